"""bench/results.svg from the figures of one bench run (run by run_bench.py with the bench venv's matplotlib).
Usage: chart.py DATA.json OUT.svg"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FormatStrFormatter  # noqa: E402

data = json.load(open(sys.argv[1]))
matplotlib.rcParams["svg.hashsalt"] = "swarm-registry-bench"  # stable ids: the SVG diffs only when figures change
sizes = data["sizes"]
styles = {"inv": ("tab:blue", "o", "-"), "fab": ("tab:cyan", "o", "--"), "floor": ("black", "s", ":"),
          "floor25519": ("black", "s", "-"), "minfab": ("tab:green", "^", "-"), "ansible": ("tab:red", "v", "-"),
          "pyinfra": ("tab:orange", "D", "-")}
lab = data.get("lab") or {}
tools = data.get("tools") or {}
panels = 3 if (lab or tools) else 2
fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.2))
for ax, case in zip(axes, ("first", "rerun")):
    for v, ys in data["fanout"][case].items():
        c, m, ls = styles.get(v, ("grey", "x", "-"))
        ax.plot(sizes, ys, marker=m, linestyle=ls, color=c, label=data["labels"][v])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(n) for n in sizes])
    ax.set_xlabel("sshd hosts on loopback (N)")
    ax.set_ylabel("wall seconds (median)")
    ax.set_title(f"trust-cert, {'first run' if case == 'first' else 're-run (in place)'}")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.grid(True, which="both", alpha=0.3)
axes[0].legend(fontsize=8)
if panels == 3:
    ax = axes[2]
    if lab:
        ns = sorted(int(n) for n in lab)
        ax.plot(ns, [lab[str(n)]["fresh"] for n in ns], "o-", color="tab:blue", label="inv setup, fresh")
        ax.plot(ns, [lab[str(n)]["converged"] for n in ns], "o--", color="tab:blue", label="inv setup, converged")
    names = {"ansible": ("recipe-playbook.yml", "tab:red", "v"), "byhand": ("recipe-by-hand.sh", "tab:purple", "P")}
    for t, (label, c, m) in names.items():
        if t in tools:
            ax.plot([3], [tools[t]["fresh"]], marker=m, color=c, linestyle="none", label=f"{label}, fresh (3 nodes)")
            ax.plot([3], [tools[t]["converged"]], marker=m, color=c, linestyle="none", fillstyle="none",
                    label=f"{label}, converged (3 nodes)")
    ax.set_yscale("log")
    ax.set_xlabel("lab swarm nodes")
    ax.set_ylabel("wall seconds")
    ax.set_title("whole recipe (inv setup) vs swarm size")
    ax.set_xticks(sorted({int(n) for n in lab} | {3}))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2], metadata={"Date": None})
