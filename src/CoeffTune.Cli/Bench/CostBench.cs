using System.Diagnostics;
using System.Runtime.InteropServices;
using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Bench;

/// <summary>One measured configuration: a model shape, a recipe, and its per-step numbers.</summary>
public sealed record CostRow(string Model, string Recipe, double MedianMs, double PeakStepMiB, double ForwardGflops, double AchievedGflops);

/// <summary>
/// Step time and step memory of each recipe with and without coeff, measured in one process and
/// interleaved (one step of every configuration per round), so drift and noise hit all alike.
/// Memory is the rise of the resident set during one step above the resident set just before it:
/// glibc is asked to hand freed memory back first and the kernel's high-water mark is reset, so
/// every configuration starts from the same floor.
/// </summary>
public static class CostBench
{
    /// <summary>A recipe with this suffix stores the attention maps for the backward pass instead of recomputing them (CoeffMixing.RecomputeMaps = false).</summary>
    public const string StoredMapsSuffix = " (stored maps)";

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private sealed class Config : IDisposable
    {
        public required string Model, Recipe;
        public required TransformerClassifier Net;
        public required Batch Batch;
        public required AdamW Optimizer;
        public required double ForwardFlops;
        public readonly List<double> Ms = new();
        public readonly List<double> StepBytes = new();
        public void Dispose() { Optimizer.Dispose(); Net.Dispose(); Batch.Dispose(); }
    }

    /// <summary>Forces the explicit map path with no change to the maps: separates materialising from mixing.</summary>
    private sealed class ExplicitMaps() : AttentionMapTransform(nameof(ExplicitMaps))
    {
        public override Tensor forward(Tensor maps) => maps.alias();
    }

    public static (List<CostRow> Rows, double PeakGflops) Run(IReadOnlyList<(string Name, Func<TransformerClassifier> Make, Func<Batch> Input, long SeqLen)> models,
        IReadOnlyList<string> recipes, int steps, TextWriter log)
    {
        var configs = new List<Config>();
        foreach (var (name, make, input, seq) in models)
            foreach (var recipe in recipes)
            {
                torch.manual_seed(0);
                var net = make();
                if (recipe == "linear+explicit-maps")
                {
                    PeftModel.Wrap(net, "linear");
                    foreach (var a in net.modules().OfType<MultiHeadAttention>()) a.AttachMapTransform(new ExplicitMaps(), "explicit");
                }
                else if (recipe.EndsWith(StoredMapsSuffix))
                {
                    PeftModel.Wrap(net, recipe[..^StoredMapsSuffix.Length]);
                    foreach (var m in net.modules().OfType<CoeffMixing>()) m.RecomputeMaps = false;
                }
                else PeftModel.Wrap(net, recipe);
                var batch = input();
                using var one = new Batch(batch.Inputs[..1], batch.AttentionMask?[..1]);
                double flops = FlopCounter.ForwardFlops(net, one, seq);
                var opt = optim.AdamW(net.parameters().Where(p => p.requires_grad), lr: 1e-4);
                configs.Add(new Config { Model = name, Recipe = recipe, Net = net, Batch = batch, Optimizer = opt, ForwardFlops = flops });
            }
        // One warm-up round, then measured rounds.
        for (int round = 0; round <= steps; round++)
        {
            foreach (var c in configs)
            {
                MallocTrim(0);
                long before = ProcessMemory.CurrentBytes();
                ProcessMemory.ResetPeak();
                var sw = Stopwatch.StartNew();
                Step(c);
                sw.Stop();
                long peak = ProcessMemory.PeakBytes();
                if (round == 0) continue;
                c.Ms.Add(sw.Elapsed.TotalMilliseconds);
                c.StepBytes.Add(Math.Max(0, peak - before));
            }
            if (round > 0) log.WriteLine($"round {round}/{steps}: " + string.Join(", ", configs.Select(c => $"{c.Model}/{c.Recipe} {c.Ms[^1]:F0} ms")));
        }
        double peakGflops = MatmulPeakGflops();
        var rows = configs.Select(c =>
        {
            double ms = Median(c.Ms);
            // A training step costs about three forward passes (forward, gradient w.r.t. activations and weights).
            double achieved = 3 * c.ForwardFlops * c.Batch.Size / (ms / 1000) / 1e9;
            return new CostRow(c.Model, c.Recipe, ms, Median(c.StepBytes) / 1048576.0, c.ForwardFlops / 1e9, achieved);
        }).ToList();
        foreach (var c in configs) c.Dispose();
        return (rows, peakGflops);
    }

    private static void Step(Config c)
    {
        using var scope = NewDisposeScope();
        c.Net.train();
        c.Optimizer.zero_grad();
        var loss = nn.functional.cross_entropy(c.Net.forward(c.Batch), c.Batch.Labels!);
        loss.backward();
        c.Optimizer.step();
    }

    /// <summary>Float32 GEMM throughput on this machine: the best of several 1024^3 products.</summary>
    public static double MatmulPeakGflops()
    {
        using var scope = NewDisposeScope();
        var a = randn(1024, 1024);
        var b = randn(1024, 1024);
        for (int i = 0; i < 3; i++) matmul(a, b).Dispose();
        double best = double.MaxValue;
        for (int i = 0; i < 10; i++)
        {
            var sw = Stopwatch.StartNew();
            matmul(a, b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * 1024 * 1024 * 1024 / best / 1e9;
    }

    private static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length == 0 ? 0 : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
