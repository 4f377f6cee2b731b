"""Registry: the model catalog and the mirror of one or more MLflow registries."""
