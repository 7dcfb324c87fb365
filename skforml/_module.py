"""The built-in networks: a multi-layer perceptron and a small CNN, returning logits."""

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

    Examples
    --------
    >>> import torch
    >>> from skforml import MLP
    >>> net = MLP(n_features=4, n_classes=3, hidden_layer_sizes=(8, 8))
    >>> net(torch.zeros(5, 4)).shape
    torch.Size([5, 3])

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


class SmallCNN(nn.Module):
    """Small convolutional network for images, returning class logits.

    Two blocks of 3x3 convolution and ReLU, the first followed by 2x2 max
    pooling, the second by adaptive max pooling to 2x2, then a linear layer:
    sized for small images such as scikit-learn's 8x8 digits (any size from
    4x4 up works).

    Parameters
    ----------
    n_classes : int, default=10
        Number of output logits.
    in_channels : int, default=1
        Channels of the input images ``(n_samples, in_channels, H, W)``.
    channels : tuple of int, default=(16, 32)
        Output channels of the two convolutions.

    Examples
    --------
    >>> import torch
    >>> from skforml import SmallCNN
    >>> SmallCNN(n_classes=3)(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 3])

    """

    def __init__(self, n_classes=10, in_channels=1, channels=(16, 32)):
        super().__init__()
        first, second = channels
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, first, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * second, n_classes),
        )

    def forward(self, X):
        return self.layers(X)
