"""From a catalogue and a region to an app's files: values, the sandbox, template analysis.

:mod:`.values` merges parameter defaults, the region profile and ``--set`` and
resolves secret references; :mod:`.sandbox` renders untrusted templates in
Jinja's sandbox, reading only inside the templates folder; :mod:`.analysis`
finds what a template uses without rendering it.  It imports
:mod:`smartshare.catalog` only; Jinja is imported inside the functions that
need it.  Submodules are not imported here.
"""
