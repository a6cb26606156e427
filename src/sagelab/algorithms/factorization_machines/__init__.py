"""SageMaker's Factorization Machines (`factorization-machines` images)."""
