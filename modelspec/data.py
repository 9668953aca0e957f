"""A train section's data files, checked: before training (torch-free, at ``check``) and as they are read.

``check_files`` runs with every check of a spec that loads a file: the file must exist beside the spec, a
CSV file's header must hold every column named, an ``.npz`` archive every array named (its member names are
read with zipfile, no numpy). ``check_data`` runs before ``modelspec train`` starts its loop: each tensor is
read and held to what the spec declares, its sample shape and its dtype, and a class-index target to the
class count. Each problem is a located error naming the file and the column (or key); never a traceback
from inside the loop.
"""

from __future__ import annotations

import csv
import os
import zipfile

from .errors import SpecArgError, SpecError, did_you_mean
from .shapes import shape_str
from .trainspec import DataSource, TrainPlan

MAX_CHECKED_ROWS = 10_000_000


class DataError(SpecError):
    """Data that does not fit the spec: a missing file, a wrong column, a value that is not a number."""

    CODE = "MS702"


def sources(plan: TrainPlan) -> list[DataSource]:
    return [plan.data] + ([plan.validation] if isinstance(plan.validation, DataSource) else [])


def resolved(plan: TrainPlan, src: DataSource) -> str:
    return plan.data_path(src.path)


def check_files(plan: TrainPlan) -> None:
    """What can be known of the data files without reading their values (see the module's docstring)."""
    for src in sources(plan):
        if src.kind != "file":
            continue
        path = resolved(plan, src)
        if not os.path.isfile(path):
            looked = " beside the spec" if not os.path.isabs(src.path) else ""
            looked += f" (looked for {path})" if path != src.path else ""
            raise DataError(f"no data file {src.path!r}{looked}", src.path_span,
                            hint="data paths are relative to the spec's folder")
        if src.suffix == ".csv":
            header = _csv_header(path, src)
            for name, col in src.columns.items():
                for c in col if isinstance(col, list) else [col]:
                    if c not in header:
                        raise DataError(f"{src.path} has no column {c!r} (for {name}); its columns: "
                                        f"{', '.join(header)}", src.column_spans[name],
                                        hint=did_you_mean(c, header) or "name a column of the header row")
        elif src.suffix == ".npz":
            try:
                with zipfile.ZipFile(path) as z:
                    keys = [n.removesuffix(".npy") for n in z.namelist()]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"{src.path} is no .npz archive: {exc}", src.path_span,
                                hint="save it with numpy.savez(path, x=x, y=y)") from None
            for name, key in src.columns.items():
                if key not in keys:
                    raise DataError(f"{src.path} holds no array {key!r} (for {name}); it holds: "
                                    f"{', '.join(keys) or 'nothing'}", src.column_spans[name],
                                    hint=did_you_mean(key, keys) or f'name one of its arrays: {name}="..."')


def _csv_header(path: str, src: DataSource) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Excel's) is no text
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{src.path} cannot be read as CSV: {exc}", src.path_span,
                        hint="a CSV file with a header row, as UTF-8 text") from None
    if not header:
        raise DataError(f"{src.path} is empty: a CSV file needs a header row naming its columns", src.path_span,
                        hint="the first line names the columns: area,rooms,price")
    return header  # as csv.DictReader keys the rows: " b" is not "b"


def check_data(plan: TrainPlan) -> None:
    """Read each data file and hold its tensors to the spec (see the module's docstring)."""
    check_files(plan)
    for src in sources(plan):
        if src.kind == "file":
            tensors = _read(plan, src)
            n = None
            for name in src.names:
                t = tensors[name]
                _fits(src, name, t)
                if n is not None and t.shape[0] != n:
                    raise DataError(f"{src.path}: {name} has {t.shape[0]} samples and {src.names[0]} has {n}",
                                    src.column_spans[name], hint="every tensor needs one row per sample")
                n = t.shape[0]
            _check_classes(plan, src, tensors[src.names[-1]])
        elif src.kind == "dataset":
            _check_dataset(src)


def _read(plan: TrainPlan, src: DataSource) -> dict:
    import torch

    path = resolved(plan, src)
    if src.suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = [(reader.line_num, row) for row in reader]  # the line each row ends on, as an editor counts
        if not rows:
            raise DataError(f"{src.path} holds no samples: a header and no rows", src.path_span,
                            hint="add rows below the header, one a sample")
        out = {}
        for name in src.names:
            col = src.columns[name]
            cols = col if isinstance(col, list) else [col]
            long = src.samples[name].dtype == "long"
            values = []
            for line, row in rows:
                got = []
                for c in cols:
                    text = (row.get(c) or "").strip()
                    try:
                        got.append(int(text) if long else float(text))
                    except ValueError:
                        role = "the target" if name == src.names[-1] else "the model input"
                        raise DataError(f"{src.path}, line {line}, column {c!r}: {text!r} is not "
                                        f"{'an integer' if long else 'a number'}", src.column_spans[name],
                                        hint=f"{role} {name} is declared Long: its column holds class indices, whole "
                                             "numbers" if long else "every value of a column the spec reads must "
                                                                    "be a number") from None
                if long and not all(-2 ** 63 <= v < 2 ** 63 for v in got):
                    raise DataError(f"{src.path}, line {line}: a value of {', '.join(map(repr, cols))} is too large "
                                    "for a Long (int64)", src.column_spans[name],
                                    hint="class indices are small whole numbers: relabel the data")
                values.append(got)
            t = torch.tensor(values, dtype=torch.long if long else torch.float32)
            shape = tuple(d.value for d in src.samples[name].shape)
            out[name] = t.view(-1, *shape) if isinstance(col, list) or shape else t.view(-1)
        return out
    if src.suffix == ".pt":
        try:
            obj = torch.load(path, weights_only=True)
        except Exception:
            raise DataError(f"{src.path} is not a file torch.save wrote, or holds more than tensors",
                            src.path_span, hint="save a dict of tensors: torch.save({'x': x, 'y': y}, path)") from None
        if not isinstance(obj, dict):
            raise DataError(f"{src.path} holds a {type(obj).__name__}, not a dict of tensors", src.path_span,
                            hint="save a dict of tensors: torch.save({'x': x, 'y': y}, path)")
        out = {}
        for name in src.names:
            key = src.columns[name]
            if key not in obj:
                keys = [str(k) for k in obj]
                raise DataError(f"{src.path} holds no tensor {key!r} (for {name}); it holds: "
                                f"{', '.join(keys) or 'nothing'}", src.column_spans[name],
                                hint=did_you_mean(key, keys) or "name one of its tensors")
            if not isinstance(obj[key], torch.Tensor):
                shown = repr(obj[key]) if len(repr(obj[key])) <= 30 else repr(obj[key])[:27] + "..."
                raise DataError(f"{src.path}: {key!r} holds a Python {type(obj[key]).__name__} ({shown}), not a tensor",
                                src.column_spans[name], hint="save tensors: torch.tensor(values)")
            out[name] = obj[key]
        return out
    import numpy as np

    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{src.path} cannot be read by numpy.load: {exc}", src.path_span,
                        hint="save it with numpy.savez(path, x=x, y=y)") from None
    out = {}
    for name in src.names:
        try:
            out[name] = torch.from_numpy(arrays[src.columns[name]])
        except (ValueError, TypeError) as exc:
            raise DataError(f"{src.path}: {src.columns[name]!r} is no array of numbers: {exc}",
                            src.column_spans[name], hint="save numeric arrays") from None
    return out


def _fits(src: DataSource, name: str, t) -> None:
    """A tensor read from a file must be [N, *sample] of a dtype the declared one takes."""
    import torch

    want = tuple(d.value for d in src.samples[name].shape)
    key = src.columns[name]
    role = "the target" if name == src.names[-1] else "the model input"
    if t.layout != torch.strided:
        raise DataError(f"{src.path}: {key!r} is a sparse tensor, which the data loader does not batch",
                        src.column_spans[name], hint="save it dense: tensor.to_dense()")
    if t.dim() == 0:
        raise DataError(f"{src.path}: {key!r} is a single number (shape []), but {role} {name} needs one value per "
                        f"sample: [N{''.join(', ' + str(d) for d in want)}]", src.column_spans[name],
                        hint="save one row per sample")
    if tuple(t.shape[1:]) != want:
        raise DataError(f"{src.path}: {key!r} is {list(t.shape)}, but {role} {name} takes samples of "
                        f"{shape_str(src.samples[name].shape)}, so [N{''.join(', ' + str(d) for d in want)}]",
                        src.column_spans[name], hint="reshape the data, or declare the input to fit it")
    dtype = src.samples[name].dtype
    floating = t.is_floating_point()
    if dtype == "long" and (floating or t.dtype.is_complex):
        raise DataError(f"{src.path}: {key!r} holds {str(t.dtype).removeprefix('torch.')} values, but {role} {name} "
                        "is declared Long (class indices)", src.column_spans[name],
                        hint="save integer labels, or declare it Float")


def _check_classes(plan: TrainPlan, src: DataSource, target) -> None:
    if plan.classes is None or not isinstance(plan.classes, int) or target.is_floating_point():
        return
    ignore = plan.loss_node.args.get("ignore_index")
    ignore = getattr(ignore, "value", ignore)
    target = target.long()  # uint16 and others: torch takes min and max of int64
    vals = target[target != ignore] if isinstance(ignore, int) else target
    if vals.numel() and (int(vals.min()) < 0 or int(vals.max()) >= plan.classes):
        low, high = int(vals.min()), int(vals.max())
        where = (f"{src.path}: the labels in {src.columns[src.names[-1]]!r}" if src.kind == "file" else
                 f"the labels of the data's {src.names[-1]}")
        raise DataError(f"{where} run from {low} to {high}, but {plan.loss} gets scores for {plan.classes} classes "
                        f"(0 to {plan.classes - 1})", src.column_spans.get(src.names[-1], src.span),
                        hint="class indices start at 0: relabel the data, or skip them with ignore_index=-1"
                        if low < 0 else f"make the model's last layer give {high + 1} scores, or relabel the data")


def check_loaded(plan: TrainPlan, graph, loaders) -> None:
    """The tensors of data computed in the spec (or read), once made, before the first step: class indices
    below the class count, an Embedding's indices below its table's size, and no nan or inf."""
    import torch

    sources = [plan.data] + [plan.validation if isinstance(plan.validation, DataSource) else plan.data]
    for src, loader in zip(sources, loaders):
        tensors = _tensors_of(loader.dataset) if loader is not None else None
        if tensors is None:
            continue
        for name, t in zip(src.names, tensors):
            span = src.column_spans.get(name, src.span)
            what = f"{src.path}: {src.columns[name]!r}" if src.kind == "file" else f"the data's {name}"
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                bad = "nan" if bool(torch.isnan(t).any()) else "inf"
                raise DataError(f"{what} holds {bad} values: every loss would be nan", span,
                                hint="drop or fill the missing values before training")
            bound = graph.index_bounds.get(name)
            if bound is not None and not t.is_floating_point() and t.numel():
                low, high = int(t.long().min()), int(t.long().max())
                if low < 0 or high >= bound:
                    raise DataError(f"{what} holds indices from {low} to {high}, but the Embedding it feeds has "
                                    f"{bound} rows (0 to {bound - 1})", span,
                                    hint=f"make the table at least {high + 1} rows, or keep the indices below {bound}")
        _check_classes(plan, src, tensors[-1])


def _tensors_of(dataset):
    """A TensorDataset's tensors (through random_split's Subset: the rows it holds); None for another dataset."""
    from torch.utils.data import Subset, TensorDataset

    if isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorDataset):
        index = list(dataset.indices)
        return [t[index] for t in dataset.dataset.tensors]
    if isinstance(dataset, TensorDataset):
        return list(dataset.tensors)
    return None


def _check_dataset(src: DataSource) -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        raise SpecArgError(f"{src.dataset} comes from torchvision, which is not installed", src.span,
                           hint="pip install 'modelspec[vision]' (torchvision)") from None
    root = src.args.get("root")
    if src.dataset != "FakeData" and not src.args.get("download") and root is not None and not os.path.isdir(root):
        raise DataError(f"{src.dataset}: no folder {root!r}, and download is False", src.span,
                        hint=f"download=True fetches it into {root!r}")

