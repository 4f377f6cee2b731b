"""The pieces of ``manage.py demo``: the servers it boots (servers), the web, worker and beat it
supervises (processes) and the data it seeds through each app's own demo data (seeding)."""
