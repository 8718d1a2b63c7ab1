"""Everything that talks to Temporal: the one client factory, the `saga` CLI, replay."""
