using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Snell;

/// <summary>
/// SNELL on one Linear: the factors registered on the Linear ("&lt;path&gt;.snell_in", "&lt;path&gt;.snell_out") and
/// the sparse kernelized update added beside the frozen weight by a forward hook (see <see cref="SnellConfig"/>).
/// </summary>
public sealed class SnellLayer
{
    public Linear Base { get; }
    /// <summary>A: (2, in, r/2). Read by name at every use: a parameter replaced under its name is the one used.</summary>
    public Parameter In => Base.get_parameter(SnellMethod.InName) ?? throw new InvalidOperationException("snell: the layer has lost its factors");
    /// <summary>B: (2, out, r/2).</summary>
    public Parameter Out => Base.get_parameter(SnellMethod.OutName) ?? throw new InvalidOperationException("snell: the layer has lost its factors");
    public SnellConfig Config { get; }
    public bool Enabled { get; set; } = true;
    public bool Merged { get; private set; }

    public SnellLayer(Linear target, SnellConfig config)
    {
        Base = target;
        Config = config;
        var w = target.weight!;
        long outF = w.shape[0], inF = w.shape[1], half = config.Rank / 2;
        // kaiming_uniform_(a = sqrt(5)) on a (2, n, r/2) tensor: fan-in n r/2, bound 1/sqrt(fan-in).
        double bIn = 1.0 / Math.Sqrt(inF * half), bOut = 1.0 / Math.Sqrt(outF * half);
        target.register_parameter(SnellMethod.InName, new Parameter(empty(new long[] { 2, inF, half }, w.dtype, w.device).uniform_(-bIn, bIn)));
        target.register_parameter(SnellMethod.OutName, new Parameter(empty(new long[] { 2, outF, half }, w.dtype, w.device).uniform_(-bOut, bOut)));
        target.register_forward_hook((_, x, y) => Enabled && !Merged ? y + Delta(x) : y);
    }

    /// <summary>The kernel merge, (in, out): 0.1 (||A_0,i - B_0,j|| - ||A_1,i - B_1,j||).</summary>
    public Tensor Kernel() => Kernel(In, Out);

    /// <summary>The kernel merge of factors <paramref name="a"/> (2, n, r/2) and <paramref name="b"/> (2, m, r/2), (n, m).</summary>
    public static Tensor Kernel(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var distances = cdist(a, b, 2.0);                                  // (2, n, m)
        return ((distances[0] - distances[1]) * SnellConfig.KernelScale).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The competition: entries of <paramref name="kernel"/> whose magnitude is above the <paramref name="sparsity"/>-quantile
    /// survive, scaled by their magnitude (held constant for the gradient); the rest are zero. Sparsity 0: the kernel itself.
    /// </summary>
    public static Tensor Sparsify(Tensor kernel, double sparsity)
    {
        if (sparsity == 0) return kernel.alias();
        using var scope = NewDisposeScope();
        var magnitude = kernel.detach().abs();
        var threshold = Quantile(magnitude.flatten(), sparsity);
        var kept = magnitude * magnitude.gt(threshold).to_type(magnitude.dtype);
        return (kernel * kept).MoveToOuterDisposeScope();
    }

    /// <summary>The q-quantile with linear interpolation, as torch.quantile computes it, without its size limit.</summary>
    private static Tensor Quantile(Tensor values, double q)
    {
        long n = values.shape[0];
        double position = q * (n - 1);
        long lo = (long)Math.Floor(position), hi = Math.Min(lo + 1, n - 1);
        var vLo = values.kthvalue(lo + 1, 0).values;
        if (hi == lo || position == lo) return vLo;
        var vHi = values.kthvalue(hi + 1, 0).values;
        return vLo + (vHi - vLo) * (position - lo);
    }

    /// <summary>The sparse update shaped like the base weight (out, in).</summary>
    public Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        return Sparsify(Kernel(), Config.Sparsity).t().contiguous().MoveToOuterDisposeScope();
    }

    private Tensor Delta(Tensor x)
    {
        using var scope = NewDisposeScope();
        bool training = Base.training;
        if (training && Config.Dropout > 0) x = nn.functional.dropout(x, Config.Dropout, training: true);
        var delta = nn.functional.linear(x, DeltaWeight());
        if (training && Config.DropPath > 0)
        {
            // Stochastic depth on the update branch: each example's whole update is kept or dropped.
            var shape = new long[x.dim()];
            Array.Fill(shape, 1L);
            shape[0] = x.shape[0];
            var keep = empty(shape, delta.dtype, delta.device).bernoulli_(1 - Config.DropPath).div_(1 - Config.DropPath);
            delta = delta * keep;
        }
        return delta.MoveToOuterDisposeScope();
    }

    public void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad()) Base.weight!.add_(DeltaWeight());
        Merged = true;
    }

    public void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad()) Base.weight!.sub_(DeltaWeight());
        Merged = false;
    }
}

/// <summary>SNELL attached to every Linear its targets choose (every Linear of the backbone by default).</summary>
public sealed class SnellMethod : IAttachedMethod
{
    public const string InName = "snell_in", OutName = "snell_out";

    private readonly Dictionary<string, SnellLayer> layers = new();
    private readonly List<string> trainable = new();
    private bool enabled = true;

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => layers.Keys.ToList();
    public IReadOnlyDictionary<string, SnellLayer> Layers => layers;
    public bool CanMerge => true;
    public bool Merged => layers.Count > 0 && layers.Values.First().Merged;

    public SnellMethod(SnellConfig config, AttachTarget target)
    {
        Config = config;
        var chosen = config.TargetModules is null ? Methods.Targets.Linears(target) : Methods.Targets.Select<Linear>(target, config.TargetModules, "snell");
        if (chosen.Count == 0) throw new ArgumentException("snell: the model has no Linear to adapt");
        foreach (var (path, linear) in chosen)
        {
            if (linear.named_parameters(recurse: false).Any(p => p.name == InName))
                throw new InvalidOperationException($"snell: '{path}' already has SNELL; a layer can be wrapped once");
            layers[path] = new SnellLayer(linear, config);
            trainable.Add($"{path}.{InName}");
            trainable.Add($"{path}.{OutName}");
        }
    }

    public bool Enabled
    {
        get => enabled;
        set { enabled = value; foreach (var l in layers.Values) l.Enabled = value; }
    }

    public void Merge() { foreach (var l in layers.Values) l.Merge(); }
    public void Unmerge() { foreach (var l in layers.Values) l.Unmerge(); }
}
