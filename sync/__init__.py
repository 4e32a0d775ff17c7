"""The domain: canonical statuses, the General settings and their rules. Free of requests and of RQ."""
