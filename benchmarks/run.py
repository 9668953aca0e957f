"""Run every benchmark and print the tables.

    .venv/bin/python -m benchmarks                  # the full run (about 35 min on 2 cores; more when
                                                    # torch.compile's cache is cold)
    .venv/bin/python -m benchmarks --quick          # about 20 min; torch.compile left out
    .venv/bin/python -m benchmarks --device cuda    # the run-time table on a CUDA GPU (batch 1 and 128)
    .venv/bin/python -m benchmarks --markdown out.md
    .venv/bin/python -m benchmarks --only budgets   # the issue's small specs, now and before the fix (~3 min)
    .venv/bin/python -m benchmarks --only construct # compile_spec against construction: warm, new process (~12 min)
    .venv/bin/python -m benchmarks --only scaling   # check, summary, compile at 100-10,000 layers (~6 min; --quick 4-5)
    .venv/bin/python -m benchmarks --only peers     # against torchinfo, torch.fx, nn.Lazy*, torchview (pip install
                                                    # -e .[bench]; a peer not installed is skipped)

Every figure is a ratio against a baseline measured in the same run, in
interleaved rounds: the median of the per-round ratios, with their min–max.
See benchmarks/RESULTS.md for the latest results and what they mean.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["runtime", "compile", "construct", "scaling", "cli", "parsing", "budgets", "training", "peers"]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} logical cores{mem}, {platform.system()} {platform.release()}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--quick", action="store_true", help="fewer rounds, no torch.compile")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda, or cpu,cuda: where the run-time table is measured (default cpu); "
                        "compile time, CLI and parsing are measured with cpu")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadiest on a shared machine)")
    p.add_argument("--clock", choices=["wall", "cpu"], default=None,
                   help="wall (perf_counter) or cpu (process CPU time); default cpu for --threads 1 on CPU, "
                        "else wall. CUDA is always timed on the wall clock, after synchronize()")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="include torch.compile (on by default in the full run)")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--models", help="run-time table: only the models whose label contains one of these "
                                    "(comma-separated, e.g. CNN,LSTM)")
    p.add_argument("--batches", help="run-time table: batch sizes (default 1,32 on CPU, 1,128 on CUDA)")
    p.add_argument("--rounds", type=int, help="run-time table: interleaved rounds per row (default 11 quick, 17 full)")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    p.add_argument("--old", metavar="DIR", default=None,
                   help="budgets: the code before the fix, to compare with (default /tmp/old6758353 where it "
                        "exists: git archive 6758353 | tar -x -C /tmp/old6758353)")
    args = p.parse_args(argv)

    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the subprocesses measured inherit it
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    torch.set_num_threads(args.threads)
    sys.path.insert(0, ROOT)

    from . import (budgets, cli_latency, compile_time, construction, measure, parsing, peers, reference, runtime,
                   training)

    quick = args.quick
    with_compile = (not quick) if args.compile is None else args.compile
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    measure.set_clock(clock)

    started = time.perf_counter()
    md: list[str] = []
    child = os.environ.get("MODELSPEC_BENCH_CHILD") == "1"
    argv = list(argv if argv is not None else sys.argv[1:])
    head = [
        f"date: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        f"machine: {_machine()}",
        f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"clock: {clock}{' (process CPU time)' if clock == 'cpu' else ''} on CPU; CUDA: wall, after synchronize()",
        f"command: python -m benchmarks {' '.join(argv)}".rstrip(),
        "figures: median ratio against the baseline named in the column, (min–max) over interleaved rounds",
    ]
    if not child:
        print("\n".join(head))
        md += ["```", *head, "```", ""]
    if not child:
        # each section in a fresh process: what one leaves behind (torch.compile's worker threads, caches,
        # a grown heap) must not weigh on the next
        failed = []
        with tempfile.TemporaryDirectory() as tmp:
            for s in sections:
                out = os.path.join(tmp, f"{s}.md")
                rest = _without(argv, ("--only", "--markdown"))
                # compile_spec's disk cache off: an "uncached" compile must compile; the construct section
                # turns it on, in a folder of its own, where it measures it
                env = dict(os.environ, MODELSPEC_BENCH_CHILD="1", MODELSPEC_NO_CACHE="1")
                if s in ("compile", "construct"):
                    # glibc's adaptive mmap threshold lets a later round reuse the memory an earlier one freed,
                    # and construction then swings between page-faulting fresh weights (ResNet-18: ~47 ms) and
                    # not (~26 ms), by history. A fixed threshold makes every round's weights fresh from the OS,
                    # as they are in the first compile of a process.
                    env.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
                res = subprocess.run([sys.executable, "-m", "benchmarks", *rest, "--only", s, "--markdown", out],
                                     cwd=ROOT, env=env)
                if res.returncode != 0:
                    failed.append(s)
                    md += [f"### {s}", "", f"failed (exit {res.returncode})", ""]
                elif os.path.exists(out):
                    with open(out, encoding="utf-8") as f:
                        md.append(f.read())
        return _finish(args, md, started, failed)

    def section(title: str, text: str, mdtext: str, note: str = ""):
        print(f"\n== {title}\n{text}" + (f"\n{note}" if note else ""))
        md.extend([f"### {title}", "", mdtext, ""] + ([note, ""] if note else []))

    log = lambda s: print(s, flush=True)

    # ------------------------------------------------------------ 2, 6: run-time overhead
    if "runtime" in sections:
        for dev in devices:
            if dev.startswith("cuda"):
                if not torch.cuda.is_available():
                    msg = "not measured: torch.cuda.is_available() is False on this machine"
                    section(f"Run-time overhead, {dev}", msg, msg)
                    continue
                measure.set_clock("wall")
                batches = [1, 128]
                name = f"{dev} ({torch.cuda.get_device_name(dev)})"
            else:
                measure.set_clock(clock)
                batches = [1, 32]
                name = f"CPU, {torch.get_num_threads()} thread(s)"
            if args.batches:
                batches = [int(b) for b in args.batches.split(",")]
            modes = ["eager", "compile"] if with_compile else ["eager"]
            benches = runtime.BENCHES
            if args.models:
                wanted = [m.strip().lower() for m in args.models.split(",")]
                benches = [b for b in benches if any(w in b.label.lower() for w in wanted)]
            print(f"\n-- run-time overhead on {name}: batches {batches}, {', '.join(modes)}", flush=True)
            rounds = args.rounds or (11 if quick else 17)
            rows = runtime.measure(benches, device=dev, batches=batches, modes=modes, rounds=rounds,
                                   target_s=0.02 if quick else 0.03,
                                   budget_s=(15 if quick else 25) * rounds / (11 if quick else 17), log=log)
            note = ("Forward latency per call; `modelspec ×` and `interpreter ×`: time / the hand-written "
                    "module's time, same weights, same input (outputs checked equal first: max |Δ|). `A/A ×`: a "
                    "second instance of the hand-written module against the first, the noise this machine "
                    "shows on a ratio that is 1 by construction. The deep MLP is not a bundled spec: its "
                    "hand-written baseline is an nn.Sequential.")
            if not with_compile:
                note += " torch.compile: not in this run (--quick or --no-compile)."
            section(f"Run-time overhead, {name}", runtime.render(rows), runtime.render(rows, markdown=True), note)
        measure.set_clock(clock)

    # ------------------------------------------------------------ 3: compile time
    if "compile" in sections:
        print("\n-- compile time, stage by stage", flush=True)
        bundled = [b for b in runtime.BENCHES if not b.generated]
        named = {b.spec: getattr(reference, b.reference, None) for b in bundled}
        specs = [(b.label, b.path, named.get(b.spec)) for b in bundled]
        for f in sorted(os.listdir(runtime.SPECS)):
            if f.endswith(".nnspec") and f not in named:
                specs.append((f.removesuffix(".nnspec"), os.path.join(runtime.SPECS, f), None))
        rows = compile_time.split(specs, rounds=7 if quick else 15, log=log)
        section("Compile time: compile_spec stage by stage, against constructing the hand-written module",
                compile_time.render_split(rows), compile_time.render_split(rows, markdown=True),
                "Each stage as a ratio to the floor: constructing the hand-written module (weight initialisation), "
                "or, marked *, the generated class itself where no separate hand-written class exists. "
                "front end = parse + elaborate + codegen + exec; its share of the sum; compile_spec × is the "
                "real call with its code cache cleared, timed apart as a check. compile_spec cached ×: the real "
                "call again in the same process, served from the code cache; its front-end share is the time "
                "until its construction begins over the whole call, then the median front-end time itself. "
                "In-process, warm (parser tables loaded); glibc's mmap threshold fixed, so that weights are "
                "fresh memory in every round as in a new process.")
        section("Front end's share of compile_spec, end to end", compile_time.render_end_to_end(rows),
                compile_time.render_end_to_end(rows, markdown=True),
                "The same rounds. Stages: the uncached stages timed one by one (the split above). compile_spec: "
                "the real call, split where its construction begins (modelspec.build.construct); uncached "
                "(cache cleared, module forgotten) and cached (the same spec compiled before in the process).")
        print("\n-- first compile in a fresh process (ResNet-18)", flush=True)
        cold = compile_time.cold_start(os.path.join(runtime.SPECS, "resnet18.nnspec"), rounds=2 if quick else 3,
                                       log=log)
        section("First compile in a fresh process, ResNet-18", measure.table(compile_time.COLD_HEADERS, cold),
                measure.table(compile_time.COLD_HEADERS, cold, markdown=True),
                "The stages called one by one in a new process (compile_spec's disk cache not involved): "
                "importing modelspec's front end, torch, the first parse (the parser's tables loaded from the "
                "package), elaboration and codegen, exec and construction. The last column is the first parse "
                "against the exec+construct that follows.")
        print("\n-- scaling with generated specs", flush=True)
        sizes = [100, 1000, 10000]
        rounds_for = (lambda n: {100: 5, 1000: 3}.get(n, 1)) if quick else (lambda n: {100: 9, 1000: 5}.get(n, 3))
        srows = compile_time.scaling(sizes, rounds_for, log)
        section("Compile time against the number of layers", compile_time.render_scaling(srows),
                compile_time.render_scaling(srows, markdown=True),
                "deep MLP: Linear(_, 16) and ReLU() children alternating, no forward; deep residual: blocks of "
                "Linear + ReLU with a skip, called from an explicit forward. µs per layer of each stage (medians).")
        section("Slopes", compile_time.render_slopes(srows), compile_time.render_slopes(srows, markdown=True),
                "Least-squares slope of each stage's time over 100, 1,000 and 10,000 layers, and (×) the time per "
                "layer at 10,000 over that at 1,000: 1.00 is linear.")
        print("\n-- building on device='meta'", flush=True)
        mrows = compile_time.meta(rounds=2 if quick else 4, log=log)
        section("Building on device=\"meta\"", measure.table(compile_time.META_HEADERS, mrows),
                measure.table(compile_time.META_HEADERS, mrows, markdown=True),
                "compile_spec(spec, device=\"meta\"): the module's structure without weight memory or "
                "initialisation, against compile_spec on the CPU. The first meta build in a process also pays "
                "torch's one-time set-up of the meta device.")

    # ------------------------------------------------------------ scaling: check, summary, compile to 10,000 layers
    if "scaling" in sections:
        from . import scaling

        print("\n-- scaling: check, summary and compile against the number of layers", flush=True)
        res = scaling.measure(rounds=2 if quick else 3, log=log)
        section("Scaling: µs per layer of check, summary and compile", scaling.render_per_layer(res),
                scaling.render_per_layer(res, markdown=True),
                "Generated specs (benchmarks/specgen.py), layers counted as the catalog layers built. check: "
                "modelspec.pipeline.check_source, as `modelspec check`; summary: summarize(...).table(), as "
                "`modelspec summary`; compile: compile_spec, its code cache cleared and generated module forgotten. "
                "Medians of interleaved rounds, in-process and warm, under Limits raised past 10,000 modules.")
        section("Scaling: linearity", scaling.render_linearity(res), scaling.render_linearity(res, markdown=True),
                "×: time per layer at 10,000 layers over that at 1,000, round by round (1.00 = linear); A/A: the "
                "1,000-layer check timed a second time in each round, against the first; slope: least squares "
                "of the median times over 100, 1,000 and 10,000 layers.")

    # ------------------------------------------------------------ 4: CLI latency
    if "cli" in sections:
        print("\n-- CLI latency", flush=True)
        rows, verdict = cli_latency.measure("specs/resnet18.nnspec", rounds=5 if quick else 11, log=log)
        section("CLI latency, ResNet-18", cli_latency.render(rows), cli_latency.render(rows, markdown=True),
                f"Fresh processes, interleaved. Parser tables cached (as after the first run). "
                f"check + codegen in one process: {verdict}.")

    # ------------------------------------------------------------ 5: parsing and memory
    if "parsing" in sections:
        print("\n-- parsing speed and peak memory", flush=True)
        rows = parsing.speed(10000, rounds=3 if quick else 5, log=log)
        section("Parsing speed", parsing.render(parsing.SPEED_HEADERS, rows),
                parsing.render(parsing.SPEED_HEADERS, rows, markdown=True),
                "modelspec.parse.parse (Lark LALR, positions kept, then the IR's dataclasses) on a generated "
                "10,000-layer spec, against CPython's ast.parse on the code generated for the same model; "
                "cyclic GC off during both.")
        rows = parsing.memory(10000, rounds=1 if quick else 2, log=log)
        section("Peak memory of compiling a 10,000-layer spec", parsing.render(parsing.MEM_HEADERS, rows),
                parsing.render(parsing.MEM_HEADERS, rows, markdown=True),
                "Fresh processes; peak RSS added over the imports (sampled every ms), medians. The front end's peak is "
                "the Python allocations of parse + elaborate + codegen (tracemalloc).")

    # ------------------------------------------------------------ work and memory budgets ("No way to exhaust")
    if "budgets" in sections:
        print("\n-- work and memory budgets: the issue's small specs", flush=True)
        rows, old_note = budgets.measure(rounds=3 if quick else 5, old_root=args.old, log=log)
        section("Work and memory budgets: the small specs of \"No way to exhaust\"", budgets.render(rows),
                budgets.render(rows, markdown=True),
                "Fresh processes, interleaved rounds with `check` of an ordinary spec (mnist_mlp); wall and CPU "
                "time medians; peak RSS the largest of the rounds, the child's own VmHWM (its ru_maxrss would "
                "include this process's). in-process: load_graph (check rows) or example_inputs, warm, against "
                f"load_graph of mnist_mlp. The issue asks for each within 1 s and 100 MB; {old_note}.")

    # ------------------------------------------------------------ training: modelspec train around the script
    if "training" in sections:
        print("\n-- training overhead", flush=True)
        rows = training.measure(epochs=3, rounds=3 if quick else 7, log=log)
        section("Training overhead: modelspec.train against the printed script's loop", training.render(rows),
                training.render(rows, markdown=True),
                "Interleaved rounds, in one process: setup and 3 epochs of the printed script's own train_loop "
                "(the baseline), against modelspec.train of the same spec (which builds the graph and the script "
                "again each time, and writes a checkpoint after every epoch with out=DIR).")

    # ------------------------------------------------------------ compile_spec against construction
    if "construct" in sections:
        print("\n-- compile_spec against constructing the hand-written module, warm and in a new process", flush=True)
        rows = construction.run(rounds_warm=11 if quick else 21, rounds_fresh=2 if quick else 3, log=log)
        section("compile_spec against constructing the hand-written module: warm, and the first call in a new process",
                construction.render(rows), construction.render(rows, markdown=True),
                construction.summary(rows) + " Floor: the hand-written class of benchmarks/reference.py, or the "
                "printed code saved as a .py and imported (its .pyc compiled first). Warm: in one process, the "
                "spec compiled before; each sample as many calls as take ~10 ms. New process: one `python -c` "
                "per sample, interleaved; after import torch: the floor importing the printed module and "
                "constructing it, against compile_spec served from the disk cache (a process that loads lark, "
                "having parsed, stops the run), timed inside the process; whole process: the same processes' wall "
                "time from start to exit. A/A: the floor against itself.")

    # ------------------------------------------------------------ peers: the tools used instead, same job
    if "peers" in sections:
        print("\n-- peers: modelspec against torchinfo, torch.fx, nn.Lazy* and torchview", flush=True)
        for t in peers.measure(quick=quick, log=log):
            section(t.title, peers.render(t), peers.render(t, markdown=True), t.note)

    return _finish(args, md, started, [], child=child)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv less the given options and their values (``--only x`` and ``--only=x``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif not a.startswith(tuple(o + "=" for o in options)):
            out.append(a)
    return out


def _finish(args, md: list[str], started: float, failed: list[str], child: bool = False) -> int:
    took = time.perf_counter() - started
    if not child:
        print(f"\ndone in {took / 60:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""))
        md = md + [f"(run took {took / 60:.1f} min)", ""]
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n".join(md))
        if not child:
            print(f"wrote {args.markdown}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
