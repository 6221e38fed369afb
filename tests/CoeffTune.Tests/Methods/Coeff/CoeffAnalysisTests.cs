using CoeffTune.Methods.Coeff;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Methods.Coeff;

public class CoeffAnalysisTests
{
    /// <summary>A 4 x 4 float32 alpha with four entries set (0.1f is not exact in binary: its float value is used below).</summary>
    private static Tensor Alpha(float diagonal = 0)
    {
        var a = eye(4) * diagonal;
        a[0, 1] = 0.75f; a[2, 3] = -0.5f; a[1, 1] = 0.1f + diagonal; a[3, 0] = 0.25f;
        return a;
    }

    private static double[,] Hand(Func<int, int, double> entry)
    {
        var m = new double[4, 4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                m[i, j] = entry(i, j);
        return m;
    }

    [Fact]
    public void Residual_alpha_prime_is_identity_plus_alpha_in_float64()
    {
        using var scope = NewDisposeScope();
        var a = CoeffAnalysis.EffectiveMixing(Alpha(), new CoeffConfig());
        var expected = Hand((i, j) => (i == j ? 1.0 : 0.0) + (i, j) switch
        {
            (0, 1) => 0.75, (2, 3) => -0.5, (1, 1) => (double)0.1f, (3, 0) => 0.25, _ => 0.0,
        });
        // Exact: formed in float64, so 1 + 0.1f keeps every bit of the float's 0.1.
        Assert.Equal(expected, a);
        var layer = new LayerMixing("l", a);
        Assert.Equal(Math.Sqrt(0.75 * 0.75 + 0.5 * 0.5 + (double)0.1f * (double)0.1f + 0.25 * 0.25), layer.DistanceFromIdentity, 14);
        Assert.Equal([(0, 1, 0.75), (2, 3, -0.5), (3, 0, 0.25)], layer.LargestOffDiagonal(3).ToArray());
    }

    [Theory]
    [InlineData(AlphaParameterization.DirectIdentity)]
    [InlineData(AlphaParameterization.DirectRandom)]
    public void Direct_alpha_prime_is_alpha_as_trained(AlphaParameterization parameterization)
    {
        using var scope = NewDisposeScope();
        var a = CoeffAnalysis.EffectiveMixing(Alpha(diagonal: 1), new CoeffConfig(parameterization: parameterization));
        Assert.Equal(Hand((i, j) => (i == j ? 1.0 : 0.0) + (i, j) switch
        {
            (0, 1) => 0.75, (2, 3) => -0.5, (1, 1) => (double)(0.1f + 1f) - 1.0, (3, 0) => 0.25, _ => 0.0,
        }), a);
        // ||alpha' - I|| counts the diagonal's distance from one too.
        Assert.Equal(Math.Sqrt(0.75 * 0.75 + 0.5 * 0.5 + Math.Pow((double)(0.1f + 1f) - 1.0, 2) + 0.25 * 0.25), new LayerMixing("l", a).DistanceFromIdentity, 14);
    }

    [Fact]
    public void Coefficient_dropout_does_not_enter_the_analysis_and_the_random_generator_is_left_alone()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(11);
        var a = CoeffAnalysis.EffectiveMixing(Alpha(), new CoeffConfig(dropout: 0.5, parameterization: AlphaParameterization.DirectRandom));
        var next = rand(3);
        torch.manual_seed(11);
        var expectedNext = rand(3);
        Assert.Equal(TestUtil.Values(expectedNext), TestUtil.Values(next));
        Assert.Equal(0.75, a[0, 1]);
        Assert.Equal(0.0, a[0, 0]);
    }

    [Fact]
    public void Alpha_prime_is_what_the_mixing_layer_multiplies_the_maps_by()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var mixing = new CoeffMixing(4, new CoeffConfig(dropout: 0.3));
        using (no_grad()) mixing.alpha.copy_(randn(4, 4) * 0.4);
        mixing.eval();
        var maps = randn(new long[] { 2, 4, 3, 5 }).softmax(-1);
        var mixed = TestUtil.Values(mixing.forward(maps));
        var f = TestUtil.Values(maps);
        var a = CoeffAnalysis.EffectiveMixing(mixing.alpha, mixing.Config);
        // Fhat^h = sum_i alpha'[h, i] F^i (Eq. 6), summed by hand over the flattened (B, H, 3 * 5) maps.
        for (int b = 0; b < 2; b++)
            for (int h = 0; h < 4; h++)
                for (int e = 0; e < 15; e++)
                {
                    double sum = 0;
                    for (int i = 0; i < 4; i++) sum += a[h, i] * f[(b * 4 + i) * 15 + e];
                    Assert.Equal(sum, mixed[(b * 4 + h) * 15 + e], 5);
                }
    }

    [Fact]
    public void Layers_come_in_numeric_order_without_the_key_prefix_and_other_tensors_are_ignored()
    {
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["p.layers.10.attention.mixing.alpha"] = eye(2) * 0.5,
            ["p.layers.9.attention.mixing.alpha"] = zeros(2, 2),
            ["p.layers.9.attention.query.lora_A.weight"] = zeros(8, 2),
            ["p.classifier.weight"] = zeros(3, 2),
        };
        var layers = CoeffAnalysis.Layers(tensors, new CoeffConfig(), "adapter.safetensors", keyPrefix: "p.");
        Assert.Equal(["layers.9.attention", "layers.10.attention"], layers.Select(l => l.Layer));
        Assert.Equal(new double[,] { { 1, 0 }, { 0, 1 } }, layers[0].AlphaPrime);
        Assert.Equal(new double[,] { { 1.5, 0 }, { 0, 1.5 } }, layers[1].AlphaPrime);
        Assert.Equal(Math.Sqrt(0.5), layers[1].DistanceFromIdentity, 14);
    }

    [Fact]
    public void A_non_square_alpha_or_none_at_all_is_an_error_naming_the_source_and_key()
    {
        using var scope = NewDisposeScope();
        var bad = new Dictionary<string, Tensor> { ["p.layers.0.attention.mixing.alpha"] = zeros(2, 3) };
        var e = Assert.Throws<InvalidDataException>(() => CoeffAnalysis.Layers(bad, new CoeffConfig(), "w.safetensors", "p."));
        Assert.Equal("w.safetensors: 'p.layers.0.attention.mixing.alpha' has shape [2, 3], not H x H", e.Message);
        var none = new Dictionary<string, Tensor> { ["p.classifier.weight"] = zeros(3, 2) };
        e = Assert.Throws<InvalidDataException>(() => CoeffAnalysis.Layers(none, new CoeffConfig(), "w.safetensors", "p."));
        Assert.Equal("w.safetensors: no '*.mixing.alpha' tensors, so no layer's mixing to analyse", e.Message);
    }
}
