"""The command line starts quickly: `paradigms --help` and `--version` import no torch (the packages' exports are
lazy, :mod:`paradigms.lazy`), an unknown command gets the closest names, and a run ends by saying what comes next.
No timings here: `make bench-cli` measures them (benchmarks/bench_cli.py)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli import TINY, error_line, run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "paradigms"
HEAVY = ("torch", "numpy", "matplotlib", "scipy", "kornia", "pydantic", "yaml")

# What each package exported when its __init__ imported its submodules eagerly: the lazy ones export the same.
EXPORTED = {
    "adversarial": "NORMS draw evaluating fgsm paste patch_success pgd side train_patch",
    "augment": "MIXES NAMES STANDARD TRANSFORMS CutMix Mix Mixup Policy Transform build soft standard",
    "autoencoder": "auroc bernoulli_log_prob elbo gaussian_kl gaussian_log_prob iwae_bound reparameterise",
    "contrastive": "MINING KeyQueue LogitScale class_embeddings clip_loss info_nce mine_triplets nt_xent "
                   "retrieval_recall squared_distances triplet_loss zero_shot_probs",
    "data": "IMAGE_DATASETS TEXT_DATASETS DatasetInfo ImageData ImageFiles ImageLoader TextData data_root "
            "describe_datasets epoch_order index_batches load_images load_text lookup registry require unit",
    "engine": "Context Trainer evaluate_run load_trained report_run seed_everything",
    "evaluate": "confusion_figure embedding_figure encode evaluate_classifier evaluate_encoder extract knn_predict "
                "linear_probe mistakes_figure predict probe_run",
    "gan": "HistoricalAverage MinibatchDiscrimination classifier_features discriminator_loss feature_matching_loss "
           "frechet_distance generator_loss real_fake_logit with_fake_class",
    "language": "IGNORE mask_tokens masked_lm_loss next_token_loss",
    "mae": "MAE MAEDecoder masked_image masked_patch_loss random_masking",
    "nets": "MLP NETS Classifier LeNet5 NetConfig ResNet ResNet18 Standardize ViT build_encoder build_net card "
            "encoder_card encoder_from_card from_card is_convolutional to_device",
    "transfer": "apply_strategy parse_strategy transfer",
}
PACKAGES = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))


def imported_after(code: str) -> list[str]:
    """The heavy modules (HEAVY) a fresh interpreter holds after running ``code``; fails if ``code`` fails."""
    probe = f"{code}\nimport sys\nprint('heavy:', *sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()[-1].split()[1:]  # the last line: what `code` printed comes before it


CLI = """
from paradigms.cli import main
try:
    main({args!r})
except SystemExit as e:
    assert not e.code, e.code
"""


def test_help_imports_no_torch():
    """`paradigms --help` builds the whole app (every plugin's commands) and imports no torch, numpy, matplotlib,
    pydantic or yaml: those wait for a command that needs them."""
    code = CLI.format(args=["--help"]) + "import sys\nassert 'paradigms.adversarial.commands' in sys.modules"
    assert imported_after(code) == []


def test_version_imports_no_torch():
    assert imported_after(CLI.format(args=["--version"])) == []


def test_a_command_s_help_imports_no_torch():
    # typer itself reads every parsed value through pydantic, so any parsing beyond the top `--help` imports it
    assert [m for m in imported_after(CLI.format(args=["run", "--help"])) if m != "pydantic"] == []


def test_importing_every_package_imports_nothing_heavy():
    assert imported_after("\n".join(f"import paradigms.{p}, paradigms.{p}.plugin" if (SRC / p / "plugin.py").is_file()
                                    else f"import paradigms.{p}" for p in PACKAGES)) == []


def test_unknown_command_says_the_closest_one(capsys):
    line = error_line(capsys, "trian")
    assert line == "error: No such command 'trian'; did you mean 'run'?", line
    assert "did you mean 'attack'" in error_line(capsys, "atack")
    line = error_line(capsys, "qqqqqqq")  # nothing close: the valid names
    assert "valid names:" in line and "run" in line and "attack" in line


def test_a_run_ends_with_what_can_be_done_with_it(capsys, tmp_path, monkeypatch):
    from paradigms import recipes

    # the recipe's commands that exist, in its order, then eval and report; another engineer fills in `commands`
    monkeypatch.setattr(recipes.get("supervised"), "commands", ("attack", "no-such-command", "report", "certify"))
    run = tmp_path / "r"
    code, out, err = run_cli(capsys, "run", "supervised", "--out", str(run), *TINY)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-2].startswith(f"run folder: {run}")
    assert lines[-1] == (f"next: paradigms attack {run}, paradigms certify {run}, paradigms eval {run}, "
                         f"paradigms report {run}")


def test_next_steps_name_what_else_a_command_requires(tmp_path):
    from typer.main import get_command

    from paradigms.cli import build_app, next_steps

    group = get_command(build_app())
    top = group.make_context("paradigms", ["run", "--help"], resilient_parsing=True)
    line = next_steps(top, ("zero-shot", "fill", "eval"), tmp_path / "a run")
    where = f"'{tmp_path / 'a run'}'"  # quoted: the line can be pasted into a shell
    assert line == (f"next: paradigms zero-shot {where} IMAGES... --labels LABELS, paradigms fill {where} TEXT, "
                    f"paradigms eval {where}, paradigms report {where}")


@pytest.mark.parametrize("package", PACKAGES)
def test_lazy_packages_export_what_they_exported(package):
    mod = importlib.import_module(f"paradigms.{package}")
    names = getattr(mod, "__all__", [])
    assert set(EXPORTED.get(package, "").split()) <= set(names)
    listed = dir(mod)
    for name in names:
        assert name in listed, f"dir(paradigms.{package}) lacks {name}"
        assert getattr(mod, name) is not None
        exec(f"from paradigms.{package} import {name}", {})
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        mod.no_such_name  # noqa: B018


@pytest.mark.parametrize("package", [p for p in PACKAGES if "attach(__name__" in (SRC / p / "__init__.py").read_text()])
def test_a_lazy_package_names_its_exports_for_type_checkers_too(package):
    """The ``if TYPE_CHECKING:`` imports of a lazy __init__ name exactly its lazy exports, each from the same
    submodule, so editors, type checkers and tests/test_architecture.py read what the package gives."""
    tree = ast.parse((SRC / package / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    static = {}  # name -> the module it comes from
    for node in block.body:
        source = node.module if not node.level else ".".join(filter(None, [f"paradigms.{package}", node.module]))
        for alias in node.names:
            whole = f"{source}.{alias.name}"  # `from paradigms.data import registry`: the submodule itself
            itself = source == f"paradigms.{package}"
            static[alias.asname or alias.name] = (whole, None) if itself else (source, alias.name)
    mod = importlib.import_module(f"paradigms.{package}")
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert set(static) == set(mod.__all__) - defined
    for name, (module, attr) in static.items():
        assert module.startswith(f"paradigms.{package}.")
        origin = importlib.import_module(module)
        assert getattr(mod, name) is (origin if attr is None else getattr(origin, attr))


def test_a_submodule_is_still_an_attribute_of_its_package():
    """``import paradigms.adversarial`` once imported ``.attacks``; its attribute still works, imported when asked."""
    import paradigms.adversarial
    import paradigms.data

    assert paradigms.adversarial.attacks.fgsm is paradigms.adversarial.fgsm
    assert paradigms.data.registry.lookup is paradigms.data.lookup
    from paradigms.augment import build

    assert callable(build)
