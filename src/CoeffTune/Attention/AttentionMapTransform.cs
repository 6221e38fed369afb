using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Attention;

/// <summary>
/// The extension point of the filter-subspace view: a module that receives the post-softmax,
/// post-mask attention maps F of one layer, shape (B, H, Nq, Nk), and returns the maps that will
/// weight the values. Coeff-Tuning is one such transform; any method that changes maps plugs in here.
/// A layer may hold several, applied in the order they were attached (<see cref="MultiHeadAttention.MapTransforms"/>).
/// The layer releases the maps it passes to <c>forward</c> once the next step has its result, so a transform
/// (or a hook on one) that keeps them for later must keep a copy.
/// </summary>
public abstract class AttentionMapTransform : nn.Module<Tensor, Tensor>
{
    protected AttentionMapTransform(string name) : base(name) { }

    /// <summary>When false the attention layer skips this transform (and, with no other enabled, keeps its fused kernel).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// transform(softmax(q k^T / sqrt(d) + mask)) v in one step, for transforms that can do it with less
    /// memory than materialising the maps for autograd; null to let the attention layer make the maps,
    /// call <c>forward</c> on them and multiply by v. Called only when this is the layer's one enabled transform
    /// and no attention dropout sits between the maps and v. q: (B, H, Nq, dh), k: (B, H, Nk, dh),
    /// v: (B, H, Nk, dv), mask additive or null.
    /// </summary>
    public virtual Tensor? Attend(Tensor q, Tensor k, Tensor v, Tensor? additiveMask) => null;

    /// <summary>
    /// Forward FLOPs this transform adds for one example's maps of <paramref name="heads"/> x <paramref name="queries"/>
    /// x <paramref name="keys"/> (a multiply-add counts as two); zero for a transform that does no arithmetic.
    /// </summary>
    public virtual double ForwardFlops(long heads, long queries, long keys) => 0;

    /// <summary>
    /// Backward FLOPs of this transform for one example's maps: the gradients of its own trainable parameters, and the
    /// gradient of the maps it received when <paramref name="mapsNeedGrad"/> (something before it is trained).
    /// </summary>
    public virtual double BackwardFlops(long heads, long queries, long keys, bool mapsNeedGrad) => 0;

    /// <summary>
    /// True when <see cref="Attend"/> keeps no maps and remakes them in the backward pass: the scores' product and this
    /// transform's forward are then paid twice per training step.
    /// </summary>
    public virtual bool RecomputesInBackward => false;
}
