"""SageMaker's LDA (`lda` images): topic mixtures of bag-of-words documents."""
