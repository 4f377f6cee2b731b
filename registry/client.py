"""Client for MLflow (MlflowClient); the only module here that speaks to an MLflow server."""
