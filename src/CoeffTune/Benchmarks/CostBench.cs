using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using CoeffTune.Attention;
using CoeffTune.Methods;
using CoeffTune.Methods.Adapter;
using CoeffTune.Methods.Baselines;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Fact;
using CoeffTune.Methods.Lora;
using CoeffTune.Methods.Snell;
using CoeffTune.Methods.Ssf;
using CoeffTune.Methods.Vpt;
using CoeffTune.Models;
using CoeffTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Benchmarks;

/// <summary>How a measured recipe treats the attention maps.</summary>
public enum MapHandling
{
    /// <summary>As the recipe does by itself (coeff recomputes its mixed maps in the backward pass).</summary>
    AsIs,
    /// <summary>A pass-through map transform forces the maps to be materialised without mixing them (no coeff).</summary>
    Explicit,
    /// <summary>Coeff keeps the maps for the backward pass instead of recomputing them (<see cref="CoeffMixing.RecomputeMaps"/> false).</summary>
    Stored,
    /// <summary>Coeff recomputes its maps for all queries at once instead of by query tiles (<see cref="CoeffMixing.TileBytes"/> 0).</summary>
    Whole,
}

/// <summary>
/// A recipe the cost bench measures: its methods as typed configs and how it treats the maps. A recipe with coeff
/// is compared with its <see cref="Baseline"/>, the same methods without coeff.
/// </summary>
public sealed record CostRecipe
{
    public const string StoredMapsSuffix = " (stored maps)";
    public const string WholeMapsSuffix = " (whole maps)";
    public const string ExplicitMapsSuffix = "+explicit-maps";

    public IReadOnlyList<IMethodConfig> Configs { get; }
    public MapHandling Maps { get; }

    public CostRecipe(params IMethodConfig[] configs) : this(MapHandling.AsIs, configs) { }

    public CostRecipe(MapHandling maps, params IMethodConfig[] configs)
    {
        if (configs.Length == 0) throw new ArgumentException("a measured recipe needs at least one method", nameof(configs));
        Configs = configs.ToArray();
        Maps = maps;
        _ = Recipe.Parse(Recipe.Format(Configs));    // no method twice, not lora with dora
        if (maps == MapHandling.Explicit && HasCoeff)
            throw new ArgumentException($"'{Recipe.Format(Configs)}': explicit maps measure materialising the maps without coeff's mixing; drop coeff", nameof(maps));
        if (maps is MapHandling.Stored or MapHandling.Whole && !HasCoeff)
            throw new ArgumentException($"'{Recipe.Format(Configs)}': only coeff can store its maps for the backward pass or make them whole", nameof(maps));
    }

    /// <summary>The name in the tables and in the recipe selection, e.g. "coeff+lora (stored maps)".</summary>
    public string Label => Recipe.Format(Configs) + Maps switch
    {
        MapHandling.Explicit => ExplicitMapsSuffix,
        MapHandling.Stored => StoredMapsSuffix,
        MapHandling.Whole => WholeMapsSuffix,
        _ => "",
    };

    public bool HasCoeff => Configs.Any(c => c is CoeffConfig);

    /// <summary>For a recipe with coeff, the recipe it is compared with: the same methods without coeff (a linear probe for coeff alone); else null.</summary>
    public CostRecipe? Baseline
    {
        get
        {
            if (!HasCoeff) return null;
            var rest = Configs.Where(c => c is not CoeffConfig).ToArray();
            return new CostRecipe(rest.Length == 0 ? [new LinearProbeConfig()] : rest);
        }
    }

    /// <summary>Every recipe the bench knows, in table order: each other method alone and with coeff, coeff storing its maps where it matters.</summary>
    public static IReadOnlyList<CostRecipe> All { get; } =
    [
        new(new LinearProbeConfig()),
        new(new CoeffConfig()),
        new(MapHandling.Explicit, new LinearProbeConfig()),
        new(new LoraConfig()),
        new(new CoeffConfig(), new LoraConfig()),
        new(MapHandling.Stored, new CoeffConfig(), new LoraConfig()),
        new(MapHandling.Whole, new CoeffConfig(), new LoraConfig()),
        new(new SsfConfig()),
        new(new CoeffConfig(), new SsfConfig()),
        new(new FactConfig()),
        new(new CoeffConfig(), new FactConfig()),
        new(new SnellConfig()),
        new(new CoeffConfig(), new SnellConfig()),
        new(new AdapterConfig()),
        new(new CoeffConfig(), new AdapterConfig()),
        new(new VptConfig()),
        new(new CoeffConfig(), new VptConfig()),
        new(new FullConfig()),
        new(new CoeffConfig(), new FullConfig()),
        new(MapHandling.Stored, new CoeffConfig(), new FullConfig()),
    ];
}

/// <summary>A model shape the cost bench measures: a fresh model and an input batch of it, and its sequence length.</summary>
public sealed record CostModel(string Name, Func<TransformerClassifier> Make, Func<Batch> Input, long SequenceLength);

/// <summary>One measured configuration: a model shape, a recipe, and its per-step numbers.</summary>
/// <param name="StepGflops">Forward plus backward GFLOPs of one training step per example, as autograd runs it (<see cref="FlopCounter.TrainingStepFlops"/>).</param>
/// <param name="AchievedGflops">The batch's step GFLOPs over the median step time.</param>
public sealed record CostRow(string Model, string Recipe, long SeqLen, double MedianMs, double PeakStepMiB, double ForwardGflops, double StepGflops, double AchievedGflops);

/// <summary>A recipe with coeff against its baseline on one model: ratios of step time, step memory and forward FLOPs.</summary>
public sealed record CostRatio(string Model, string Base, long SeqLen, double Time, double Memory, double MiBAdded, double Flops);

/// <summary>What the cost bench measures: the model shapes (small ones when quick), the steps and the recipes.</summary>
public sealed record CostBenchSetup
{
    private readonly int steps = 10;
    private readonly IReadOnlyList<CostRecipe> recipes = CostRecipe.All;

    /// <summary>Steps a smoke run measures.</summary>
    public const int QuickSteps = 3;

    /// <summary>Tokens per batch of the MiniLM shape at each of <see cref="SequenceLengths"/> (quick: a quarter).</summary>
    public const int TokensPerBatch = 2048;

    private readonly IReadOnlyList<int>? sequenceLengths;

    /// <summary>
    /// When set, the MiniLM shape alone is measured at each of these sequence lengths, with <see cref="TokensPerBatch"/>
    /// tokens per batch (a batch of 2048 / length sequences); when null, the ViT-B/16 and MiniLM shapes at their usual sizes.
    /// </summary>
    public IReadOnlyList<int>? SequenceLengths
    {
        get => sequenceLengths;
        init
        {
            if (value is { Count: 0 }) throw new ArgumentException($"{nameof(CostBenchSetup)}.{nameof(SequenceLengths)} is empty", nameof(SequenceLengths));
            foreach (var n in value ?? [])
                if (n < 2 || n > TokensPerBatch)
                    throw new ArgumentException($"{nameof(CostBenchSetup)}.{nameof(SequenceLengths)}: {n} must be between 2 and {TokensPerBatch} tokens", nameof(SequenceLengths));
            if (value is not null && value.Distinct().Count() != value.Count)
                throw new ArgumentException($"{nameof(CostBenchSetup)}.{nameof(SequenceLengths)}: {string.Join(", ", value)} names a length twice", nameof(SequenceLengths));
            sequenceLengths = value?.ToArray();
        }
    }

    /// <summary>Small model shapes, for a smoke run (which measures <see cref="QuickSteps"/> steps).</summary>
    public bool Quick { get; init; }

    /// <summary>Measured steps per configuration (the median is reported).</summary>
    public int Steps
    {
        get => steps;
        init => steps = value >= 1 ? value : throw new ArgumentException($"{nameof(CostBenchSetup)}.{nameof(Steps)} must be at least 1, got {value}", nameof(Steps));
    }

    /// <summary>The recipes measured; every recipe with coeff needs its baseline among them, for the ratio.</summary>
    public IReadOnlyList<CostRecipe> Recipes
    {
        get => recipes;
        init
        {
            if (value.Count == 0) throw new ArgumentException($"{nameof(CostBenchSetup)}.{nameof(Recipes)} is empty", nameof(Recipes));
            foreach (var r in value)
                if (r.Baseline is { } b && !value.Any(x => x.Label == b.Label))
                    throw new ArgumentException($"'{r.Label}' is compared with '{b.Label}', which is not in the list", nameof(Recipes));
            recipes = value.ToArray();
        }
    }

    /// <summary>
    /// The recipes named by <paramref name="labels"/> (<see cref="CostRecipe.Label"/>), in that order; null or empty: all.
    /// An unknown name is an error listing the known ones.
    /// </summary>
    public static IReadOnlyList<CostRecipe> Select(IReadOnlyList<string>? labels)
    {
        if (labels is not { Count: > 0 }) return CostRecipe.All;
        return labels.Select(l => CostRecipe.All.FirstOrDefault(r => r.Label == l)
            ?? throw new ArgumentException($"unknown recipe '{l}'; choose from {string.Join(", ", CostRecipe.All.Select(x => $"'{x.Label}'"))}", "recipes")).ToList();
    }

    /// <summary>
    /// ViT-B/16 and MiniLM shapes with random weights and inputs (quick: small versions of both); with
    /// <see cref="SequenceLengths"/>, the MiniLM shape at each length instead.
    /// </summary>
    public IReadOnlyList<CostModel> Models()
    {
        bool q = Quick;
        if (SequenceLengths is { } lengths)
        {
            int tokensPerBatch = q ? TokensPerBatch / 4 : TokensPerBatch;
            return lengths.Select(n =>
            {
                var shape = (q ? BertConfig.MiniLM(2) with { Depth = 2, VocabSize = 1000 } : BertConfig.MiniLM(2)) with { MaxPositions = Math.Max(512, n) };
                int batch = Math.Max(1, tokensPerBatch / n);
                return new CostModel($"MiniLM shape{(q ? " (quick: 2 layers)" : "")}, batch {batch} x {n} tokens", () => new BertClassifier(shape),
                    () => new Batch(randint(0, shape.VocabSize, new long[] { batch, n }), ones(batch, n, ScalarType.Int64), Labels: randint(0, 2, new long[] { batch })), n);
            }).ToList();
        }
        var vit = q ? new VitConfig { ImageSize = 32, PatchSize = 8, Dim = 96, Depth = 2, Heads = 12, MlpDim = 192, Classes = 10 } : VitConfig.Base16(classes: 10);
        var bert = q ? BertConfig.MiniLM(2) with { Depth = 2, VocabSize = 1000 } : BertConfig.MiniLM(2);
        int vitBatch = q ? 2 : 4, bertBatch = q ? 4 : 16, tokens = q ? 32 : 128;
        return
        [
            new($"ViT-B/16 shape{(q ? " (quick: small)" : "")}, batch {vitBatch}", () => new VisionTransformer(vit),
                () => new Batch(rand(vitBatch, 3, vit.ImageSize, vit.ImageSize), Labels: randint(0, 10, new long[] { vitBatch })), vit.Patches + 1),
            new($"MiniLM shape{(q ? " (quick: 2 layers)" : "")}, batch {bertBatch} x {tokens} tokens", () => new BertClassifier(bert),
                () => new Batch(randint(0, bert.VocabSize, new long[] { bertBatch, tokens }), ones(bertBatch, tokens, ScalarType.Int64), Labels: randint(0, 2, new long[] { bertBatch })), tokens),
        ];
    }
}

/// <summary>The cost bench's outcome and the files it wrote.</summary>
public sealed record CostReport(IReadOnlyList<CostRow> Rows, double PeakGflops, string Markdown, string MarkdownPath, string JsonPath);

/// <summary>
/// Step time and step memory of each recipe with and without coeff, measured in one process and
/// interleaved (one step of every configuration per round), so drift and noise hit all alike.
/// Memory is the rise of the resident set during one step above the resident set just before it:
/// glibc is asked to hand freed memory back first and the kernel's high-water mark is reset, so
/// every configuration starts from the same floor.
/// </summary>
public static class CostBench
{
    public const string MarkdownFile = "cost.md";
    public const string JsonFile = "cost.json";

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    private static bool canTrim = OperatingSystem.IsLinux();

    /// <summary>glibc's malloc_trim where there is one (elsewhere, and on C libraries without it, nothing).</summary>
    private static void TrimHeap()
    {
        if (!canTrim) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { canTrim = false; }
    }

    /// <summary>Measures <paramref name="s"/>, writes cost.md and cost.json (recording <paramref name="command"/>) into <paramref name="outDir"/>.</summary>
    public static CostReport Run(CostBenchSetup s, string outDir, string command, TextWriter log)
    {
        int n = s.Steps;
        var (rows, peak) = Measure(s.Models(), s.Recipes, n, log);
        Directory.CreateDirectory(outDir);
        var md = Markdown(rows, s.Recipes, peak, n, command);
        var mdPath = Path.Combine(outDir, MarkdownFile);
        var jsonPath = Path.Combine(outDir, JsonFile);
        IO.AtomicFile.WriteAllText(mdPath, md);
        IO.AtomicFile.WriteAllText(jsonPath, JsonSerializer.Serialize(new
        {
            steps = n, matmul_peak_gflops = peak, rows,
            ratios = Ratios(rows, s.Recipes).Select(r => new { model = r.Model, method = r.Base, seq_len = r.SeqLen, time_ratio = r.Time, memory_ratio = r.Memory, step_mib_added = r.MiBAdded, flops_ratio = r.Flops }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        return new CostReport(rows, peak, md, mdPath, jsonPath);
    }

    private sealed class Config : IDisposable
    {
        public required string Model, Recipe;
        public required long SeqLen;
        public required TransformerClassifier Net;
        public required Batch Batch;
        public required AdamW Optimizer;
        public required double ForwardFlops;
        public required FlopCounter.StepFlops StepFlops;
        public readonly List<double> Ms = new();
        public readonly List<double> StepBytes = new();
        public void Dispose() { Optimizer.Dispose(); Net.Dispose(); Batch.Dispose(); }
    }

    /// <summary>Forces the explicit map path with no change to the maps: separates materialising from mixing.</summary>
    private sealed class ExplicitMaps() : AttentionMapTransform(nameof(ExplicitMaps))
    {
        public override Tensor forward(Tensor maps) => maps.alias();
    }

    /// <summary>One warm-up round, then <paramref name="steps"/> measured rounds of one training step of every (model, recipe).</summary>
    public static (List<CostRow> Rows, double PeakGflops) Measure(IReadOnlyList<CostModel> models, IReadOnlyList<CostRecipe> recipes, int steps, TextWriter log)
    {
        var configs = new List<Config>();
        foreach (var (name, make, input, seq) in models)
            foreach (var recipe in recipes)
            {
                torch.manual_seed(0);
                var net = make();
                PeftModel.Wrap(net, recipe.Configs.ToArray());
                if (recipe.Maps == MapHandling.Explicit)
                    foreach (var a in net.modules().OfType<MultiHeadAttention>()) a.AttachMapTransform(new ExplicitMaps(), "explicit");
                else if (recipe.Maps == MapHandling.Stored)
                    foreach (var m in net.modules().OfType<CoeffMixing>()) m.RecomputeMaps = false;
                else if (recipe.Maps == MapHandling.Whole)
                    foreach (var m in net.modules().OfType<CoeffMixing>()) m.TileBytes = 0;
                var batch = input();
                using var one = new Batch(batch.Inputs[..1], batch.AttentionMask?[..1]);
                double flops = FlopCounter.ForwardFlops(net, one, seq);
                var step = FlopCounter.TrainingStepFlops(net, one);
                var opt = optim.AdamW(net.parameters().Where(p => p.requires_grad), lr: 1e-4);
                configs.Add(new Config { Model = name, SeqLen = seq, Recipe = recipe.Label, Net = net, Batch = batch, Optimizer = opt, ForwardFlops = flops, StepFlops = step });
            }
        for (int round = 0; round <= steps; round++)
        {
            foreach (var c in configs)
            {
                TrimHeap();
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
            // The FLOPs the step actually does: a frozen backbone has no weight gradients, and below the first trained
            // parameter no activation gradients either.
            double achieved = c.StepFlops.Total * c.Batch.Size / (ms / 1000) / 1e9;
            return new CostRow(c.Model, c.Recipe, c.SeqLen, ms, Median(c.StepBytes) / 1048576.0, c.ForwardFlops / 1e9, c.StepFlops.Total / 1e9, achieved);
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

    /// <summary>Each measured recipe with coeff (of <paramref name="recipes"/>) against its baseline on the same model, in the rows' order.</summary>
    public static IEnumerable<CostRatio> Ratios(IReadOnlyList<CostRow> rows, IReadOnlyList<CostRecipe> recipes)
    {
        foreach (var r in rows)
        {
            var recipe = recipes.FirstOrDefault(x => x.Label == r.Recipe);
            if (recipe?.Baseline is not { } baseline) continue;
            var b = rows.First(x => x.Model == r.Model && x.Recipe == baseline.Label);
            var suffix = recipe.Maps switch { MapHandling.Stored => CostRecipe.StoredMapsSuffix, MapHandling.Whole => CostRecipe.WholeMapsSuffix, _ => "" };
            yield return new CostRatio(r.Model, baseline.Label + suffix, r.SeqLen, r.MedianMs / b.MedianMs,
                b.PeakStepMiB > 0 ? r.PeakStepMiB / b.PeakStepMiB : double.NaN, r.PeakStepMiB - b.PeakStepMiB, r.ForwardGflops / b.ForwardGflops);
        }
    }

    public static string Markdown(IReadOnlyList<CostRow> rows, IReadOnlyList<CostRecipe> recipes, double peak, int steps, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## cost");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`. Median of {steps} training steps per configuration, all configurations interleaved in one process; " +
            $"step memory = rise of the resident set during a step. Float32 GEMM peak measured in the same run: {peak:F1} GFLOP/s.");
        sb.AppendLine();
        sb.AppendLine("| model | recipe | step time (ms) | step memory (MiB) | forward GFLOPs/example | step GFLOPs/example | achieved GFLOP/s (% of GEMM peak) |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Model} | {r.Recipe} | {r.MedianMs:F1} | {r.PeakStepMiB:F1} | {r.ForwardGflops:F4} | {r.StepGflops:F4} | {r.AchievedGflops:F1} ({100 * r.AchievedGflops / peak:F0}%) |");
        sb.AppendLine();
        sb.AppendLine("| model | sequence | method | + coeff: time ratio | step memory ratio | FLOPs ratio |");
        sb.AppendLine("|---|---:|---|---:|---:|---:|");
        foreach (var r in Ratios(rows, recipes))
            sb.AppendLine($"| {r.Model} | {r.SeqLen} | {r.Base} | {r.Time:F3} | {r.Memory:F3} ({r.MiBAdded:+0.0;-0.0} MiB) | {r.Flops:F4} |");
        return sb.ToString();
    }
}
