"""Client for Azure DevOps REST; the only module here that speaks to ADO pipelines and builds."""
