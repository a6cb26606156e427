"""SageMaker's BlazingText (`blazingtext` images): Word2Vec and fastText text classification."""
