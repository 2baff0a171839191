"""HTTP edge of the registry: FastAPI app, schemas, problem+json errors."""
