"""The GPU path: pickling across devices, no host sync per step, mixed precision.

The CPU tests check the mechanisms (what a pickle holds, what the training
step reads back); the tests marked ``cuda`` run them on a CUDA device and
are skipped without one (``benchmarks/run_gpu_checks.sh`` runs them).
"""

import io
import pickle
import traceback
import warnings

import numpy as np
import pytest
import torch
from skorch.exceptions import DeviceWarning
from torch.utils.data import TensorDataset

from skforml import FORMLClassifier, ReweightedClassifier, SmallCNN
from skforml.training._net import tensors_to

TINY = {"max_epochs": 3, "batch_size": 32, "hidden_layer_sizes": (8,)}

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)


class OnFakeCuda(torch.Tensor):
    """A CPU tensor that says it lives on CUDA: a CUDA fit, faked on a CPU.

    Operations on it return plain tensors, so moving it "to the CPU" gives an
    ordinary tensor, as ``.to("cpu")`` of a CUDA tensor does. It pickles as a
    CUDA tensor does, its bytes tagged ``cuda:0``: a plain ``pickle.loads``
    fails on a machine without CUDA, a ``torch.load`` with a
    ``map_location`` (skorch's loading of ``cuda_dependent_attributes_``)
    maps it.
    """

    def __reduce_ex__(self, protocol):
        buffer = io.BytesIO()
        tag = torch.serialization.location_tag
        torch.serialization.location_tag = lambda storage: "cuda:0"
        try:
            torch.save(self.as_subclass(torch.Tensor).detach().clone(), buffer)
        finally:
            torch.serialization.location_tag = tag
        return (torch.storage._load_from_bytes, (buffer.getvalue(),))

    @property
    def device(self):
        return torch.device("cuda", 0)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


def fake_cuda(tensor):
    return tensor.as_subclass(OnFakeCuda)


def all_tensors(obj, seen=None):
    """Every tensor reachable from ``obj`` through containers and ``__dict__``."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if torch.is_tensor(obj):
        return [obj]
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, (type, torch.nn.Module)):
        children = list(vars(obj).values())
    else:
        children = []
    return [t for child in children for t in all_tensors(child, seen)]


def storage_locations(obj):
    """Devices that the storages in ``pickle.dumps(obj)`` were saved from.

    Storages pickle as ``torch.storage._load_from_bytes(torch.save bytes)``;
    loading those bytes with a ``map_location`` function reveals where each
    storage was. skorch's own blob of the ``cuda_dependent_attributes_``
    (module, optimizer, weighting...) is a nested pickle that skorch maps on
    loading: it is not looked into here (see :func:`storage_locations_of_blob`).
    """
    with warnings.catch_warnings():
        # Loading a "CUDA" net on this machine maps it to the CPU.
        warnings.simplefilter("ignore", DeviceWarning)
        return storage_locations_of_blob(io.BytesIO(pickle.dumps(obj)))


def storage_locations_of_blob(blob):
    """Devices of the storages in the pickle ``blob`` (a binary file)."""
    locations = []

    def record(storage, location):
        locations.append(location)
        return storage

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch.storage", "_load_from_bytes"):
                return lambda b: torch.load(
                    io.BytesIO(b), map_location=record, weights_only=False
                )
            return super().find_class(module, name)

    Recorder(blob).load()
    return set(locations)


@pytest.fixture
def fitted(biased_data):
    X, y, groups = biased_data
    return FORMLClassifier(**TINY, random_state=0).fit(X, y, sensitive_features=groups)


def test_a_fake_cuda_tensor_needs_a_map_location_to_load():
    blob = pickle.dumps(fake_cuda(torch.ones(3)))
    assert storage_locations(fake_cuda(torch.ones(3))) == {"cuda:0"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            pickle.loads(blob)


def test_pickle_maps_the_nets_tensors_of_a_cuda_fit(fitted):
    net = fitted.net_
    # Fake a CUDA fit: the weights, their scale, the loss average and the
    # objective's multipliers and stratum weights claim to live on CUDA.
    net.weighting_.logits = fake_cuda(net.weighting_.logits)
    net.weighting_.mean_square = fake_cuda(net.weighting_.mean_square)
    net.loss_average_.average = fake_cuda(net.loss_average_.average)
    objective = net.meta_objective_
    objective.multipliers = fake_cuda(objective.multipliers)
    objective.stratum_weight = fake_cuda(objective.stratum_weight)
    state = net.__getstate__()
    # The weighting and loss average travel in skorch's pickle of the
    # cuda_dependent_attributes_, which loading maps to an available device.
    assert {"weighting_", "loss_average_"} <= set(net.cuda_dependent_attributes_)
    assert "weighting_" not in state and "loss_average_" not in state
    blob = io.BytesIO(state["__cuda_dependent_attributes__"])
    assert "cuda:0" in storage_locations_of_blob(blob)
    # The objective, whose loss is the net's method, is pickled with the
    # net, its tensors on the CPU.
    tensors = all_tensors(state["meta_objective_"])
    assert len(tensors) >= 2
    assert all(type(t) is torch.Tensor and t.device.type == "cpu" for t in tensors)
    torch.testing.assert_close(
        state["meta_objective_"].multipliers,
        objective.multipliers.as_subclass(torch.Tensor),
    )
    # The net itself still holds its (fake) CUDA tensors: pickling copies.
    assert type(objective.multipliers) is OnFakeCuda
    assert storage_locations(net) == {"cpu"}


def test_tensors_to_copies_only_what_moves(fitted):
    weighting = fitted.net_.weighting_
    assert tensors_to(weighting, "cpu") is weighting
    state = {"w": weighting, "again": weighting, "n": 3}
    assert tensors_to(state, "cpu") is state
    weighting_fake = tensors_to(weighting, "meta")
    assert weighting_fake is not weighting
    assert weighting_fake.logits.device.type == "meta"
    assert weighting.logits.device.type == "cpu"
    shared = tensors_to({"a": weighting, "b": weighting}, "meta")
    assert shared["a"] is shared["b"]


def test_model_fitted_on_cuda_loads_on_a_cpu_only_machine(fitted, biased_data):
    X, _, _ = biased_data
    expected = fitted.predict_proba(X)
    # Fake a CUDA fit on this CPU-only machine: skorch maps the module to the
    # CPU with a DeviceWarning; skforml's tensors were saved on the CPU.
    fitted.net_.device = "cuda"
    fitted.net_.weighting_.logits = fake_cuda(fitted.net_.weighting_.logits)
    blob = pickle.dumps(fitted)
    assert storage_locations(fitted) == {"cpu"}
    if torch.cuda.is_available():
        pytest.skip("the CPU-only load needs a machine without CUDA")
    with pytest.warns(DeviceWarning):
        loaded = pickle.loads(blob)
    assert torch.device(loaded.net_.device).type == "cpu"
    tensors = all_tensors(vars(loaded.net_))
    assert all(t.device.type == "cpu" for t in tensors)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-6)
    np.testing.assert_array_equal(loaded.sample_weights_, fitted.sample_weights_)


def test_training_step_reads_nothing_back_from_the_device(biased_data, monkeypatch):
    # .item(), .tolist(), float(t), bool(t), nonzero all read a tensor's
    # value on the host; within the step none may run. The epoch's one read
    # (the batch losses, then the epoch-end callbacks) is allowed.
    X, y, groups = biased_data
    clf = FORMLClassifier(**TINY, random_state=0)
    reads = []
    in_step = [False]
    net_class = type(clf)._build_net

    def build(self, *args):
        net = net_class(self, *args)
        step = net.train_step

        def watched(batch, **kwargs):
            in_step[0] = True
            try:
                return step(batch, **kwargs)
            finally:
                in_step[0] = False

        net.train_step = watched
        return net

    def reader(name, original):
        def read(self, *args, **kwargs):
            # Adam's step counter lives on the host (capturable=False): its
            # .item() reads no device memory.
            caller = traceback.extract_stack(limit=3)[0].filename
            if in_step[0] and "torch/optim" not in caller:
                reads.append(name)
            return original(self, *args, **kwargs)

        return read

    for name in ("item", "tolist", "__float__", "__bool__", "__int__", "nonzero"):
        monkeypatch.setattr(
            torch.Tensor, name, reader(name, getattr(torch.Tensor, name))
        )
    monkeypatch.setattr(type(clf), "_build_net", build)
    clf.fit(X, y, sensitive_features=groups)
    monkeypatch.undo()
    assert reads == []
    assert np.std(clf.sample_weights_[~clf.validation_mask_]) > 1e-3
    # The history holds floats once an epoch is over.
    losses = [b["train_loss"] for b in clf.history_[-1, "batches"] if "train_loss" in b]
    assert losses and all(isinstance(loss, float) for loss in losses)
    assert clf.history_[-1, "train_loss"] == pytest.approx(np.mean(losses), rel=0.1)


@pytest.mark.parametrize("estimator", ["forml", "baseline"])
def test_bfloat16_precision_fits_and_keeps_float32_state(estimator, biased_data):
    X, y, groups = biased_data
    Estimator, extra = {
        "forml": (FORMLClassifier, {}),
        "baseline": (ReweightedClassifier, {"weighting": "learning_to_reweight"}),
    }[estimator]
    clf = Estimator(**TINY, **extra, precision="bfloat16", random_state=0)
    clf.fit(X, y, sensitive_features=groups)
    assert clf.net_.autocast_dtype_ is torch.bfloat16
    assert clf.net_.weighting_.logits.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in clf.net_.module_.parameters())
    assert np.isfinite(clf.sample_weights_).all()
    reference = Estimator(**TINY, **extra, random_state=0)
    reference.fit(X, y, sensitive_features=groups)
    # bfloat16 keeps ~3 significant digits: close to, not equal to float32.
    agree = np.mean(clf.predict(X) == reference.predict(X))
    assert agree > 0.9
    assert not np.array_equal(clf.sample_weights_, reference.sample_weights_)


# ------------------------------------------------------------------- CUDA


def _images(n=240, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(3, size=n)
    X = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    X[np.arange(n), 0, y, y] += 3.0
    return X, y, (rng.rand(n) < 0.4).astype(int)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_cnn_fits_on_cuda_and_matches_the_cpu(precision):
    X, y, groups = _images()
    params = dict(
        module=SmallCNN,
        module_params={"n_classes": 3},
        max_epochs=3,
        batch_size=32,
        random_state=0,
        precision=precision,
    )
    gpu = FORMLClassifier(**params, device="cuda").fit(X, y, sensitive_features=groups)
    assert gpu.net_.weighting_.logits.device.type == "cuda"
    assert np.isfinite(gpu.sample_weights_).all()
    if precision == "float32":
        cpu = FORMLClassifier(**params).fit(X, y, sensitive_features=groups)
        np.testing.assert_allclose(
            gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-3
        )


@pytest.mark.cuda
@needs_cuda
def test_cuda_fit_pickles_with_every_tensor_on_the_cpu():
    X, y, groups = _images()
    # A module instance: the net's "module" is then module_ itself.
    clf = FORMLClassifier(
        SmallCNN(n_classes=3),
        max_epochs=2,
        batch_size=32,
        device="cuda",
        random_state=0,
    ).fit(X, y, sensitive_features=groups)
    assert storage_locations(clf) == {"cpu"}
    loaded = pickle.loads(pickle.dumps(clf))
    # Back on the GPU where there is one.
    assert loaded.net_.weighting_.logits.device.type == "cuda"
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


@pytest.mark.cuda
@needs_cuda
def test_dataset_on_cuda_with_pinned_workers():
    X, y, groups = _images()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    params = dict(
        module=SmallCNN, module_params={"n_classes": 3}, max_epochs=2,
        batch_size=32, random_state=0, device="cuda",
    )  # fmt: skip
    on_dataset = FORMLClassifier(**params, num_workers=2).fit(
        dataset, sensitive_features=groups
    )
    on_array = FORMLClassifier(**params).fit(X, y, sensitive_features=groups)
    np.testing.assert_allclose(
        on_dataset.sample_weights_, on_array.sample_weights_, rtol=1e-4
    )
