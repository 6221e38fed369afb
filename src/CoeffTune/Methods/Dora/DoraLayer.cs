using CoeffTune.Methods.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Dora;

/// <summary>
/// DoRA on one Linear: y = m * (W + sBA) x / ||W + sBA|| + b, the norm taken per output feature
/// (row of W) and detached in the backward pass, as the DoRA paper does (Sec. 4.3).
/// </summary>
public sealed class DoraLayer : LoraLayer
{
    public const string MagnitudeName = "lora_magnitude_vector";
    public readonly Parameter magnitude;
    private Tensor? mergedNorm;

    public DoraLayer(Linear target, LoraConfig config) : base(target, config)
    {
        using (no_grad())
        {
            using var scope = NewDisposeScope();
            magnitude = new Parameter(WeightNorm().detach().clone().MoveToOuterDisposeScope());
        }
        target.register_parameter(MagnitudeName, magnitude);
    }

    public override IEnumerable<string> ParameterNames => base.ParameterNames.Append(MagnitudeName);

    /// <summary>||W + s B A|| per output feature.</summary>
    public Tensor WeightNorm() => (Base.weight! + DeltaWeight()).norm(1, keepdim: false, p: 2);

    protected override Tensor Adapt(Tensor x, Tensor y)
    {
        var scale = magnitude / WeightNorm().detach();           // (out)
        var bias = Base.bias;
        var baseNoBias = bias is null ? y : y - bias;
        var r = (baseNoBias + Delta(x)) * scale;
        return bias is null ? r : r + bias;
    }

    public override void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var norm = WeightNorm();
            var merged = (Base.weight! + DeltaWeight()) * (magnitude / norm).unsqueeze(1);
            Base.weight!.copy_(merged);
            mergedNorm = norm.detach().clone().DetachFromDisposeScope();
        }
        Merged = true;
    }

    public override void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            var original = Base.weight! * (mergedNorm! / magnitude).unsqueeze(1) - DeltaWeight();
            Base.weight!.copy_(original);
        }
        mergedNorm!.Dispose();
        mergedNorm = null;
        Merged = false;
    }
}
