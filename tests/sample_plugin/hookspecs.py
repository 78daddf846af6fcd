"""The sample plugin's own hook: what a package that extends the plugin may implement."""

import pluggy

hookspec = pluggy.HookspecMarker("ventanilla")


@hookspec
def sample_stamps():
    """Stamps the sample plugin may print on a note: a list of short strings."""
