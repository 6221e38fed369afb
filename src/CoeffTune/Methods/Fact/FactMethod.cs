using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Fact;

/// <summary>
/// FacT-TT attached to a model: the shared factors registered on the model itself ("fact_u.weight", "fact_v.weight"),
/// each adapted Linear's core registered on that Linear ("&lt;path&gt;.fact_core") and its update added by a forward hook.
/// </summary>
public sealed class FactMethod : IAttachedMethod
{
    public const string UName = "fact_u", VName = "fact_v", CoreName = "fact_core";
    /// <summary>The names under which FacT registers modules and parameters.</summary>
    public static readonly string[] ModuleNames = { UName, VName };

    private sealed record Layer(string Path, Linear Linear, int BlocksIn, int BlocksOut)
    {
        /// <summary>Read by name at every use: a parameter replaced under its name (a loaded or moved one) is the one used.</summary>
        public Parameter Core => Linear.get_parameter(CoreName) ?? throw new InvalidOperationException($"fact: '{Path}' has lost its core");
    }

    private readonly List<Layer> layers = new();
    private readonly List<string> trainable = new();
    private readonly FactConfig config;

    /// <summary>U: D -> r, shared by every adapted Linear.</summary>
    public Linear U { get; }
    /// <summary>V: r -> D, shared, zero at start.</summary>
    public Linear V { get; }
    /// <summary>The model width D the factors act on.</summary>
    public int Width { get; }

    public IMethodConfig Config => config;
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => layers.Select(l => l.Path).ToList();
    public bool Enabled { get; set; } = true;
    public bool CanMerge => true;
    public bool Merged { get; private set; }

    public FactMethod(FactConfig config, AttachTarget target)
    {
        this.config = config;
        var model = target.Model;
        if (model.named_children().Any(c => c.name == UName))
            throw new InvalidOperationException("fact: the model already has FacT factors; a model can be wrapped once");
        int d = Width = Methods.Targets.Width(target, "fact");
        if (config.Rank > d) throw new ArgumentOutOfRangeException(nameof(config), $"FacT rank {config.Rank} is above the model width {d}");

        List<(string Path, Linear Module)> chosen;
        if (config.TargetModules is null)
            chosen = Methods.Targets.Linears(target).Where(l => Fits(l.Module, d)).ToList();
        else
        {
            chosen = Methods.Targets.Select<Linear>(target, config.TargetModules, "fact");
            foreach (var (path, linear) in chosen.Where(l => !Fits(l.Module, d)))
                throw new ArgumentException($"fact: '{path}' maps {linear.weight!.shape[1]} to {linear.weight!.shape[0]} features; FacT adapts Linears whose widths are multiples of the model width {d}");
        }
        if (chosen.Count == 0) throw new ArgumentException($"fact: the model has no Linear whose widths are multiples of its width {d}");

        var w0 = chosen[0].Module.weight!;
        U = nn.Linear(d, config.Rank, hasBias: false);          // Kaiming-uniform, as nn.Linear initialises
        V = nn.Linear(config.Rank, d, hasBias: false);
        using (no_grad()) V.weight!.zero_();
        U.to(w0.dtype).to(w0.device);
        V.to(w0.dtype).to(w0.device);
        model.register_module(UName, U);
        model.register_module(VName, V);
        trainable.Add($"{UName}.weight");
        trainable.Add($"{VName}.weight");

        foreach (var (path, linear) in chosen)
        {
            if (linear.named_parameters(recurse: false).Any(p => p.name == CoreName))
                throw new InvalidOperationException($"fact: '{path}' already has a FacT core; a layer can be wrapped once");
            var w = linear.weight!;
            int blocksIn = (int)(w.shape[1] / d), blocksOut = (int)(w.shape[0] / d);
            // As nn.Linear initialises its weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
            double bound = 1.0 / Math.Sqrt(blocksIn * config.Rank);
            var core = new Parameter(empty(new long[] { blocksOut * config.Rank, blocksIn * config.Rank }, w.dtype, w.device).uniform_(-bound, bound));
            linear.register_parameter(CoreName, core);
            var layer = new Layer(path, linear, blocksIn, blocksOut);
            layers.Add(layer);
            linear.register_forward_hook((_, x, y) => Enabled && !Merged ? y + Delta(layer, x) : y);
            trainable.Add($"{path}.{CoreName}");
        }
    }

    private static bool Fits(Linear linear, int d) => linear.weight!.shape[0] % d == 0 && linear.weight!.shape[1] % d == 0;

    /// <summary>s V dropout(C U x), with x and the output taken as blocks of D features.</summary>
    private Tensor Delta(Layer layer, Tensor x)
    {
        using var scope = NewDisposeScope();
        var lead = x.shape[..^1];
        int r = config.Rank, d = Width;
        var u = U.call(x.reshape(Shape(lead, layer.BlocksIn, d)));                       // (..., m_in, r)
        var h = nn.functional.linear(u.reshape(Shape(lead, layer.BlocksIn * r)), layer.Core);   // (..., m_out r)
        if (layer.Linear.training && config.Dropout > 0) h = nn.functional.dropout(h, config.Dropout, training: true);
        var v = V.call(h.reshape(Shape(lead, layer.BlocksOut, r)));                        // (..., m_out, D)
        return v.reshape(Shape(lead, layer.BlocksOut * d)).mul_(config.Scale).MoveToOuterDisposeScope();
    }

    private static long[] Shape(long[] lead, params long[] tail) => lead.Concat(tail).ToArray();

    /// <summary>The update of the Linear at <paramref name="path"/>, shaped like its weight: s blockdiag(V) C blockdiag(U).</summary>
    public Tensor DeltaWeight(string path) => DeltaWeight(layers.FirstOrDefault(l => l.Path == path)
        ?? throw new KeyNotFoundException($"fact: no adapted layer '{path}'; adapted: {string.Join(", ", layers.Take(6).Select(l => l.Path))}{(layers.Count > 6 ? ", ..." : "")}"));

    private Tensor DeltaWeight(Layer layer)
    {
        using var scope = NewDisposeScope();
        int r = config.Rank, d = Width;
        var core = layer.Core.view(layer.BlocksOut, r, layer.BlocksIn, r);
        // Delta[o D + a, i D + b] = s sum_{t, t'} V[a, t] C[o r + t, i r + t'] U[t', b]
        var delta = einsum("at,otiu,ub->oaib", V.weight!, core, U.weight!);
        return delta.reshape(layer.BlocksOut * d, layer.BlocksIn * d).mul_(config.Scale).MoveToOuterDisposeScope();
    }

    public void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
            foreach (var l in layers) l.Linear.weight!.add_(DeltaWeight(l));
        Merged = true;
    }

    public void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
            foreach (var l in layers) l.Linear.weight!.sub_(DeltaWeight(l));
        Merged = false;
    }
}
