"""Read queries shared by this app's views and API."""
