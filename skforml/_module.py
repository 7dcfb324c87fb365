"""The built-in network: a multi-layer perceptron that returns logits."""

from torch import nn


class MLP(nn.Module):
    """Fully connected ReLU network returning class logits.

    Parameters
    ----------
    n_features : int
        Input width.
    n_classes : int
        Number of output logits.
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.

    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(64,), dropout=0.0):
        super().__init__()
        layers = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        return self.layers(X)
