using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Lora;

/// <summary>
/// LoRA on one Linear: the low-rank factors are registered on the Linear itself (state-dict keys
/// "&lt;path&gt;.lora_A.weight", "&lt;path&gt;.lora_B.weight", as Hugging Face PEFT names them) and
/// their contribution is added by a forward hook, so the model's code is untouched.
/// </summary>
public class LoraLayer
{
    /// <summary>The names under which LoRA registers its modules on the wrapped Linear.</summary>
    public static readonly string[] ModuleNames = { "lora_A", "lora_B", "lora_dropout", "lora_magnitude_vector" };

    public Linear Base { get; }
    public readonly Linear lora_A;
    public readonly Linear lora_B;
    protected readonly Dropout dropout;
    public double Scaling { get; }
    public bool Enabled { get; set; } = true;
    public bool Merged { get; protected set; }

    public LoraLayer(Linear target, LoraConfig config)
    {
        Base = target;
        if (target.named_children().Any(c => c.name == "lora_A"))
            throw new InvalidOperationException("layer already has LoRA; a layer can be wrapped once");
        var w = target.weight!;
        long outF = w.shape[0], inF = w.shape[1];
        // A rank above the layer's smaller side adds parameters without adding rank, and a huge one exhausts memory.
        if (config.Rank > Math.Min(inF, outF))
            throw new ArgumentOutOfRangeException(nameof(config), $"LoRA rank {config.Rank} is above the layer's smaller side ({outF} x {inF}); use at most {Math.Min(inF, outF)}");
        lora_A = nn.Linear(inF, config.Rank, hasBias: false);      // Kaiming-uniform, as nn.Linear initialises
        lora_B = nn.Linear(config.Rank, outF, hasBias: false);
        using (no_grad()) lora_B.weight!.zero_();
        dropout = nn.Dropout(config.Dropout);
        lora_A.to(w.dtype).to(w.device);
        lora_B.to(w.dtype).to(w.device);
        Scaling = config.Scaling;
        target.register_module("lora_A", lora_A);
        target.register_module("lora_B", lora_B);
        target.register_module("lora_dropout", dropout);
        target.register_forward_hook((_, x, y) => Enabled && !Merged ? Adapt(x, y) : y);
    }

    /// <summary>State-dict names, relative to the wrapped Linear, of the parameters this layer trains.</summary>
    public virtual IEnumerable<string> ParameterNames => new[] { "lora_A.weight", "lora_B.weight" };

    /// <summary>Sets A (r, in) and B (out, r), checking their shapes; refuses while merged.</summary>
    public void SetFactors(Tensor a, Tensor b)
    {
        if (Merged) throw new InvalidOperationException("unmerge before setting LoRA factors");
        void Copy(Tensor dst, Tensor src, string name)
        {
            if (!src.shape.SequenceEqual(dst.shape))
                throw new ArgumentException($"LoRA {name} has shape [{string.Join(", ", src.shape)}], the layer expects [{string.Join(", ", dst.shape)}]");
            using (no_grad()) dst.copy_(src.to(dst.dtype).to(dst.device));
        }
        Copy(lora_A.weight!, a, "A");
        Copy(lora_B.weight!, b, "B");
    }

    /// <summary>s B A (dropout x): the low-rank update of the output.</summary>
    protected Tensor Delta(Tensor x) => lora_B.call(lora_A.call(dropout.call(x))).mul_(Scaling);

    /// <summary>y = W x + b + s B A x.</summary>
    protected virtual Tensor Adapt(Tensor x, Tensor y) => y + Delta(x);

    /// <summary>s B A, shaped like the base weight.</summary>
    public Tensor DeltaWeight() => matmul(lora_B.weight!, lora_A.weight!).mul_(Scaling);

    public virtual void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad()) Base.weight!.add_(DeltaWeight());
        Merged = true;
    }

    public virtual void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad()) Base.weight!.sub_(DeltaWeight());
        Merged = false;
    }
}
