"""Everything that changes this app's state, as keyword-only functions named <entity>_<action>."""
