"""The training loop: the skorch net, its callbacks, batches and the split."""
