using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Attention;

/// <summary>
/// The extension point of the filter-subspace view: a module that receives the post-softmax,
/// post-mask attention maps F of one layer, shape (B, H, Nq, Nk), and returns the maps that will
/// weight the values. Coeff-Tuning is one such transform; any method that changes maps plugs in here.
/// </summary>
public abstract class AttentionMapTransform : nn.Module<Tensor, Tensor>
{
    protected AttentionMapTransform(string name) : base(name) { }

    /// <summary>When false the attention layer ignores this transform and keeps its fused kernel.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// transform(maps) V in one step, for transforms that can do it with less memory than the two steps;
    /// null to let the attention layer do the two steps. Called only when no attention dropout sits between them.
    /// </summary>
    public virtual Tensor? TransformAndAttend(Tensor maps, Tensor values) => null;
}
