"""Client for Azure DevOps approvals API; the only module here that reads and PATCHes approvals."""
