"""DRF serializers of this app's API."""
