"""Reports: pure renderers (text, markdown, JSON) and the sinks that publish them."""
