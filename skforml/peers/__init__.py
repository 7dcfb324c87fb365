"""The PyTorch fairness libraries on FORML's network: fairret and FairGrad."""
