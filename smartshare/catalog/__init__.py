"""What a catalogue holds: app manifests and region profiles, and every check on them.

Untrusted YAML loading, located problems, the single validators
(:mod:`.rules`: paths, git refs and URLs, versions, licences), the pydantic
models, loading a catalogue, the ``requires`` graph and the cross-file
checks.  Nothing here fetches, builds or writes; the one import of another
package is the checks (:mod:`.checks`, :mod:`.own_checks`,
:mod:`.template_checks`, :mod:`.changes`) using :mod:`smartshare.rendering`'s
static template analysis (nothing is rendered).  Submodules are not imported here, so that
importing one of them stays cheap.
"""
