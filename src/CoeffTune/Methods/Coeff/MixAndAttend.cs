using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>
/// out = (alpha' mixing of F) V as one autograd node that keeps F, V and alpha' but not the mixed maps:
/// the backward pass recomputes them (one H x H matmul) instead of holding a second (B, H, Nq, Nk)
/// tensor per layer. F is kept by the softmax anyway, so mixing then costs no map memory of its own.
/// </summary>
internal sealed class MixAndAttend : autograd.SingleTensorFunction<MixAndAttend>
{
    public override string Name => nameof(MixAndAttend);

    /// <summary>vars: alpha' (H, H), maps F (B, H, Nq, Nk), values V (B, H, Nk, dh).</summary>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (mix, maps, v) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2]);
        ctx.save_for_backward(new List<Tensor> { mix, maps, v });
        // Record nothing here: the node's own backward replaces the graph of these two products, and a
        // recorded graph would keep the mixed maps alive, the very tensor this node exists not to keep.
        using var _ = no_grad();
        using var mixed = Mix(mix, maps);
        return matmul(mixed, v);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var saved = ctx.get_saved_variables();
        var (mix, maps, v) = (saved[0], saved[1], saved[2]);
        long b = maps.shape[0], h = maps.shape[1], nq = maps.shape[2], nk = maps.shape[3];
        using var mixed = Mix(mix, maps);
        var gradV = matmul(mixed.transpose(-2, -1), grad);
        using var gradMixed = matmul(grad, v.transpose(-2, -1)).reshape(b, h, nq * nk);
        var gradMaps = matmul(mix.t(), gradMixed).view(b, h, nq, nk);
        using var perBatch = matmul(gradMixed, maps.reshape(b, h, nq * nk).transpose(1, 2));
        var gradMix = perBatch.sum(dim: 0);            // sum(0) would bind to sum(ScalarType)
        return new List<Tensor> { gradMix, gradMaps, gradV };
    }

    /// <summary>Fhat^h = sum_i alpha'[h, i] F^i as one batched matmul over the flattened maps.</summary>
    public static Tensor Mix(Tensor mix, Tensor maps)
    {
        long b = maps.shape[0], h = maps.shape[1], nq = maps.shape[2], nk = maps.shape[3];
        return matmul(mix, maps.reshape(b, h, nq * nk)).view(b, h, nq, nk);
    }
}
