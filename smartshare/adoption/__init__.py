"""Adoption: ``plan`` and ``adopt``, the pipeline from a catalogue to a region's workspace.

:mod:`.request` checks everything and builds the run's context;
:mod:`.assess` resolves sources and works out what each app needs (the tag
policy, change detection against the lock); :mod:`.plan` shows it;
:mod:`.runner` schedules the apps on threads and materialises them (export,
render, build, push, record); :mod:`.events` is what a run reports.  It may
import every other package; none imports it.  Submodules are not imported
here.
"""
