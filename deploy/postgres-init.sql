-- The Prefect server's own database, next to LeadHub's store (POSTGRES_DB).
CREATE DATABASE prefect OWNER leadhub;
