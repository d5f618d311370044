"""The scenes of a batch: what each input is (scene folder, synth:SEED, raw dataset and its converter), its name and
its folders, all checked before any task runs (one-line errors naming the input)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from recon.batch.config import STEPS, BatchConfig
from recon.bench.options import dedupe, split_extra, split_list, tyro_one_line
from recon.bench.plan import unique_names
from recon.errors import ReconError

CONVERT_OWNED = {"--out": "recon batch writes each scene to OUT/scenes/NAME",
                 "--overwrite": "a converted scene is reused, never replaced",
                 "--from": "give the converter with --from or in the inputs file"}


def converters() -> tuple[str, ...]:
    from recon.data.convert.dispatch import Source

    return get_args(Source)


@dataclass
class Item:
    """One scene of the batch."""

    name: str
    src: str
    """The input as given: a scene folder, synth:SEED, or a raw dataset path (absolute)."""
    converter: str | None
    """None: the input is a scene folder already; 'synth'; or a recon data convert source."""
    convert_args: list[str] = field(default_factory=list)
    scene_dir: Path = Path()
    key_path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"input": self.src, "from": self.converter, "convert_args": self.convert_args,
                "scene": str(self.scene_dir)}


def parse_steps(value: str) -> list[str]:
    steps = split_list(value, "--steps")
    for s in steps:
        if s not in STEPS:
            raise ReconError(f"--steps: unknown step {s!r} (steps: {', '.join(STEPS)})")
    return [s for s in STEPS if s in steps]


def _raw_item(src: str, converter: str, args: list[str], where: str) -> Item:
    if converter not in converters():
        raise ReconError(f"{where}: unknown converter {converter!r} (one of {', '.join(converters())})")
    p = Path(src)
    if not p.exists():
        raise ReconError(f"{where}: {p}: no such file or folder")
    name = p.resolve().name
    if p.is_file():
        name = p.resolve().stem
    return Item(name, str(p.resolve()), converter, args, key_path=str(p.resolve()))


def _file_items(path: Path) -> list[Item]:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise ReconError(f"--inputs-file: {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ReconError(f"--inputs-file: {path}: not valid JSON ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise ReconError(f"--inputs-file: {path}: expected a non-empty JSON list of {{\"src\", \"from\"}} objects")
    items = []
    for i, e in enumerate(raw):
        where = f"--inputs-file: {path} entry {i}"
        if not isinstance(e, dict) or not isinstance(e.get("src"), str) or not isinstance(e.get("from"), str):
            raise ReconError(f"{where}: expected an object with string 'src' and 'from'")
        unknown = set(e) - {"src", "from", "name", "args"}
        if unknown:
            raise ReconError(f"{where}: unknown keys {sorted(unknown)} (src, from, name, args)")
        src = Path(e["src"]) if Path(e["src"]).is_absolute() else path.parent / e["src"]
        args = split_extra(str(e.get("args", "")), f"{where} args", CONVERT_OWNED)
        it = _raw_item(str(src), e["from"], args, where)
        if e.get("name") is not None:
            if not isinstance(e["name"], str) or not e["name"] or "/" in e["name"] or e["name"].startswith("."):
                raise ReconError(f"{where}: name {e['name']!r} is not a folder name")
            it.name = e["name"]
        items.append(it)
    return items


def parse_items(cfg: BatchConfig, steps: list[str]) -> list[Item]:
    """Every input of the batch, checked, with its unique name and scene folder (OUT/scenes/NAME when converted)."""
    args = split_extra(cfg.convert_args, "--convert-args", CONVERT_OWNED)
    items: list[Item] = []
    for src in cfg.inputs:
        if src.startswith("synth:"):
            try:
                seed = int(src.split(":", 1)[1])
            except ValueError:
                raise ReconError(f"{src!r}: not synth:SEED with an integer SEED") from None
            if seed < 0:
                raise ReconError(f"{src!r}: the synthetic street's seed must be >= 0")
            items.append(Item(f"synth_{seed}", src, "synth", args, key_path=src))
        elif cfg.from_ is not None:
            items.append(_raw_item(src, cfg.from_, args, f"--from {cfg.from_}"))
        else:
            p = Path(src)
            if not p.is_dir():
                raise ReconError(f"{p}: no such scene folder (give --from SOURCE to convert raw data)")
            if not (p / "scene.json").is_file():
                raise ReconError(f"{p}: not a scene folder (no scene.json); give --from SOURCE to convert raw data")
            items.append(Item(p.resolve().name, str(p.resolve()), None, [], p.resolve(), key_path=str(p.resolve())))
    if cfg.inputs_file is not None:
        items += _file_items(cfg.inputs_file)
    if not items:
        raise ReconError("no inputs: give scene folders, synth:SEED or raw datasets (with --from), or --inputs-file")
    items = dedupe(items, "inputs", key=lambda it: (it.key_path, it.converter))
    items = unique_names(items, path_attr="key_path")
    out = cfg.out.resolve()
    for it in items:
        if it.converter is not None:
            it.scene_dir = out / "scenes" / it.name
            check_convert_args(it)
            if "convert" not in steps and not (it.scene_dir / "scene.json").is_file():
                raise ReconError(f"{it.src}: not converted yet ({it.scene_dir} has no scene.json); add convert to "
                                 "--steps")
    return items


def synth_config(it: Item) -> Any:
    from recon.data.synth import SynthConfig

    seed = int(it.src.split(":", 1)[1])
    cfg = tyro_one_line(SynthConfig, it.convert_args, f"{it.src}: --convert-args",
                        default=SynthConfig(seed=seed, defocus_frames=0), prog="recon data synth")
    cfg.validate()
    return cfg


def convert_args(it: Item) -> Any:
    from recon.data.convert.dispatch import ConvertArgs

    return tyro_one_line(ConvertArgs, [it.src, "--from", str(it.converter), "--out", str(it.scene_dir),
                                       *it.convert_args], f"{it.src}: convert args", prog="recon data convert")


def check_convert_args(it: Item) -> None:
    if it.converter == "synth":
        synth_config(it)
    elif it.converter is not None:
        convert_args(it)
