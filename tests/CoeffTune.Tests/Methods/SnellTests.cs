using CoeffTune.Methods;
using CoeffTune.Methods.Snell;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

public sealed class SnellTests
{
    /// <summary>
    /// Hand count on ViT-B, SNELL-8: each adapted Linear of n inputs and m outputs has factors (2, n, 4) and (2, m, 4),
    /// 8 (n + m). Per layer: four 768 x 768 projections, 4 x 8 x 1,536 = 49,152; the MLP's two, 2 x 8 x 3,840 = 61,440.
    /// </summary>
    [Fact]
    public void Parameters_on_vit_b_match_the_hand_count()
    {
        Assert.Equal(12 * (4 * 8 * (768 + 768) + 2 * 8 * (768 + 3072)), MethodTestKit.VitBaseCount("snell"));
        Assert.Equal(1_327_104, MethodTestKit.VitBaseCount("snell"));
        Assert.Equal(1_728 + 1_327_104, MethodTestKit.VitBaseCount("coeff+snell"));
    }

    /// <summary>The kernel merge entry by entry from the factors' values: 0.1 (||A0_i - B0_j|| - ||A1_i - B1_j||).</summary>
    [Fact]
    public void The_kernel_merge_is_a_signed_sum_of_euclidean_distances_between_factor_rows()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var a = randn(2, 5, 3, ScalarType.Float64);
        var b = randn(2, 4, 3, ScalarType.Float64);
        var k = SnellLayer.Kernel(a, b);
        Assert.Equal(new long[] { 5, 4 }, k.shape);
        var av = Values(a);
        var bv = Values(b);
        var kv = Values(k);
        double Dist(int h, int i, int j) => Math.Sqrt(Enumerable.Range(0, 3).Sum(c => Math.Pow(av[(h * 5 + i) * 3 + c] - bv[(h * 4 + j) * 3 + c], 2)));
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(0.1 * (Dist(0, i, j) - Dist(1, i, j)), kv[i * 4 + j], 12);
    }

    /// <summary>
    /// The competition against numbers worked out here: the 0.4-quantile of |Delta| (linear interpolation between sorted
    /// magnitudes), entries at or below it zeroed, survivors multiplied by their magnitude; sparsity 0 keeps the kernel as it is.
    /// </summary>
    [Fact]
    public void Competition_keeps_entries_above_the_quantile_scaled_by_their_magnitude()
    {
        using var scope = NewDisposeScope();
        var k = tensor(new double[] { 0.5, -0.1, 0.3, -0.7, 0.2, 0.05, -0.4, 0.6, 0.0, 0.25 }).view(2, 5);
        // Sorted magnitudes: 0, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7; position 0.4 x 9 = 3.6: 0.2 + 0.6 x 0.05 = 0.23.
        var s = Values(SnellLayer.Sparsify(k, 0.4));
        double[] expected = { 0.25, 0, 0.09, -0.49, 0, 0, -0.16, 0.36, 0, 0.0625 };
        for (int i = 0; i < 10; i++) Assert.Equal(expected[i], s[i], 12);
        Assert.Equal(Values(k), Values(SnellLayer.Sparsify(k, 0.0)));
    }

    [Fact]
    public void Gradients_of_the_kernelized_merge_match_finite_differences_in_float64()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var a = randn(2, 6, 4, ScalarType.Float64).requires_grad_();
        var b = randn(2, 7, 4, ScalarType.Float64).requires_grad_();
        var g = randn(6, 7, ScalarType.Float64);
        foreach (var sparsity in new[] { 0.0, 0.4 })
        {
            // The competition's mask and magnitudes are constants for the gradient: finite differences hold them at
            // their values at the point, as the gradient does.
            Tensor kept;
            using (no_grad())
            {
                var k0 = SnellLayer.Kernel(a, b);
                kept = sparsity == 0 ? ones_like(k0) : SnellLayer.Sparsify(k0, sparsity) / torch.where(k0.abs() > 0, k0, ones_like(k0));
            }
            double F() { using var s = NewDisposeScope(); using var ng = no_grad(); return (SnellLayer.Kernel(a, b) * kept * g).sum().ToDouble(); }
            a.grad?.zero_();
            b.grad?.zero_();
            (SnellLayer.Sparsify(SnellLayer.Kernel(a, b), sparsity) * g).sum().backward();
            foreach (var p in new[] { a, b })
            {
                var grad = p.grad!.view(-1);
                for (long i = 0; i < p.numel(); i += 5)
                {
                    double numeric = MethodTestKit.FiniteDifference(F, p, i);
                    double analytic = grad[i].ToDouble();
                    Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * Math.Max(1, Math.Abs(analytic)), $"sparsity {sparsity}, entry {i}: autograd {analytic}, finite difference {numeric}");
                }
            }
        }
    }

    [Fact]
    public void The_update_sits_beside_the_frozen_weight_and_is_as_sparse_as_asked()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, new SnellConfig(rank: 4, sparsity: 0.75));
        model.eval();
        var layer = peft.Method<SnellMethod>().Layers["layers.1.intermediate"];
        Assert.Equal(new long[] { 2, 32, 2 }, layer.In.shape);
        Assert.Equal(new long[] { 2, 64, 2 }, layer.Out.shape);
        var delta = layer.DeltaWeight();
        Assert.Equal(new long[] { 64, 32 }, delta.shape);
        double zeros = delta.eq(0).sum().ToDouble() / delta.numel();
        Assert.InRange(zeros, 0.75, 0.76);
        torch.manual_seed(4);
        var x = randn(3, 32);
        var expected = matmul(x, (layer.Base.weight! + delta).t()) + layer.Base.bias!;
        Assert.True(MaxAbsDiff(layer.Base.call(x), expected) <= 1e-5);
        // Not zero at start: two independent distance terms.
        Assert.True(delta.abs().max().ToDouble() > 0);
    }

    [Theory]
    [InlineData("snell")]
    [InlineData("coeff+snell")]
    public void Merged_output_equals_unmerged_and_unmerge_restores_the_weights(string recipe) =>
        MethodTestKit.AssertMergeIsExact(recipe, "snell", seed: 7);

    [Fact]
    public void Adapter_files_round_trip_to_identical_outputs()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(0.0, MethodTestKit.RoundTripDifference("coeff+snell",
            new Dictionary<string, System.Text.Json.Nodes.JsonObject> { ["snell"] = new() { ["r"] = 4, ["sparsity"] = 0.5 } }));
    }

    [Fact]
    public void Settings_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SnellConfig(rank: 7));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SnellConfig(sparsity: 1.0));
        var c = SnellConfig.FromJson(new SnellConfig(rank: 16, sparsity: 0.9).ToJson());
        Assert.Equal((16, 0.9), (c.Rank, c.Sparsity));
    }
}
