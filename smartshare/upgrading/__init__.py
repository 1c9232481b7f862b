"""``upgrade``: newer versions of adopted apps, keeping the region's patches and hand edits."""
