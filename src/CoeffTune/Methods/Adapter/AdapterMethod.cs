using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Adapter;

/// <summary>One bottleneck: h -> up(GELU(down(h))), up zero at start. The residual is added by the caller.</summary>
public sealed class Bottleneck : nn.Module<Tensor, Tensor>
{
    public readonly Linear down;
    public readonly Linear up;

    public Bottleneck(long width, int size) : base(nameof(Bottleneck))
    {
        down = nn.Linear(width, size);
        up = nn.Linear(size, width);
        using (no_grad())
        {
            up.weight!.zero_();
            up.bias!.zero_();
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor h)
    {
        using var hidden = nn.functional.gelu(down.call(h));
        return up.call(hidden);
    }
}

/// <summary>
/// Adapters attached after every chosen module: a <see cref="Bottleneck"/> registered on the module as "adapter"
/// ("&lt;path&gt;.adapter.down.weight", ...), its output added to the module's by a forward hook.
/// </summary>
public sealed class AdapterMethod : IAttachedMethod
{
    public const string ModuleName = "adapter";

    private readonly Dictionary<string, Bottleneck> adapters = new();
    private readonly List<string> trainable = new();

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => adapters.Keys.ToList();
    public IReadOnlyDictionary<string, Bottleneck> Adapters => adapters;
    public bool Enabled { get; set; } = true;
    public bool CanMerge => false;
    public bool Merged => false;

    public AdapterMethod(AdapterConfig config, AttachTarget target)
    {
        Config = config;
        List<(string Path, nn.Module Module)> chosen;
        if (config.TargetModules is null)
        {
            int d = Methods.Targets.Width(target, "adapter");
            chosen = target.Model.named_modules().Where(m => !target.IsExcluded(m.name) && !m.name.Split('.').Any(MethodRegistry.ModuleNames.Contains))
                .Where(m => m.module is MultiHeadAttention || m.module is Linear l && l.weight!.shape[0] == d && l.weight!.shape[1] > d)
                .Select(m => (m.name, m.module)).ToList();
        }
        else
        {
            chosen = Methods.Targets.Select<nn.Module>(target, config.TargetModules, "adapter");
            foreach (var (path, module) in chosen.Where(m => m.Module is not (MultiHeadAttention or Linear)))
                throw new ArgumentException($"adapter: '{path}' is a {module.GetType().Name}; adapters follow an attention layer or a Linear");
        }
        if (chosen.Count == 0) throw new ArgumentException("adapter: the model has no attention layer or MLP output to put an adapter after");
        foreach (var (path, module) in chosen)
        {
            if (module.named_children().Any(c => c.name == ModuleName))
                throw new InvalidOperationException($"adapter: '{path}' already has an adapter; a module can be wrapped once");
            var (width, w) = module switch
            {
                MultiHeadAttention a => ((long)a.Dim, a.output.weight!),
                Linear l => (l.weight!.shape[0], l.weight!),
                _ => throw new InvalidOperationException(),
            };
            var bottleneck = new Bottleneck(width, config.Size);
            bottleneck.to(w.dtype).to(w.device);
            module.register_module(ModuleName, bottleneck);
            switch (module)
            {
                case MultiHeadAttention a: a.register_forward_hook((_, _, y) => Enabled ? y + bottleneck.call(y) : y); break;
                case Linear l: l.register_forward_hook((_, _, y) => Enabled ? y + bottleneck.call(y) : y); break;
            }
            adapters[path] = bottleneck;
            trainable.AddRange(bottleneck.named_parameters().Select(p => $"{path}.{ModuleName}.{p.name}"));
        }
    }

    public void Merge() { }
    public void Unmerge() { }
}
