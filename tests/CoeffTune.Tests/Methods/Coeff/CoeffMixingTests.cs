using CoeffTune.Attention;
using CoeffTune.Methods.Coeff;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods.Coeff;

public class CoeffMixingTests
{
    private static Tensor RandomMaps(int b, int h, int nq, int nk, ScalarType dtype = ScalarType.Float32) =>
        randn(new long[] { b, h, nq, nk }, dtype).softmax(-1);

    [Fact]
    public void Gradient_wrt_alpha_matches_central_finite_differences_in_float64()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(4);
        var attn = new MultiHeadAttention(16, 4);
        attn.to(ScalarType.Float64).eval();
        var mixing = CoeffTuning.Apply(attn).Values.Single();
        using (no_grad()) mixing.alpha.copy_(randn(4, 4, ScalarType.Float64) * 0.3);
        var x = randn(new long[] { 2, 6, 16 }, ScalarType.Float64);
        var w = randn(new long[] { 2, 6, 16 }, ScalarType.Float64);
        double Loss() { using var _ = no_grad(); return (attn.forward(x) * w).sum().ToDouble(); }

        var loss = (attn.forward(x) * w).sum();
        loss.backward();
        var analytic = Values(mixing.alpha.grad!);
        var numeric = new double[16];
        const double eps = 1e-6;
        for (int i = 0; i < 16; i++)
        {
            var flat = mixing.alpha.detach().view(-1);
            double orig = flat[i].ToDouble();
            using (no_grad()) flat[i] = orig + eps;
            double plus = Loss();
            using (no_grad()) flat[i] = orig - eps;
            double minus = Loss();
            using (no_grad()) flat[i] = orig;
            numeric[i] = (plus - minus) / (2 * eps);
        }
        double num = Math.Sqrt(analytic.Zip(numeric, (a, n) => (a - n) * (a - n)).Sum());
        double den = Math.Sqrt(numeric.Sum(n => n * n));
        Assert.True(num / den <= 1e-6, $"relative error {num / den:E2}");
    }

    [Theory]
    [InlineData(true, true, false, 0)]      // cross-attention with a padding mask, every projection trained
    [InlineData(false, true, false, 0)]     // self-attention, no mask
    [InlineData(false, false, false, 0)]    // frozen projections and input: only alpha' needs a gradient
    [InlineData(false, true, true, 0)]      // causal self-attention
    [InlineData(true, true, false, 2)]      // the same, query tiles of 2 rows (5 queries: tiles of 2, 2, 1)
    [InlineData(false, true, false, 2)]
    [InlineData(false, false, false, 2)]
    [InlineData(false, true, true, 2)]      // causal: each tile gets its own rows of the mask
    [InlineData(false, true, true, 1)]
    public void Recomputing_the_maps_in_backward_whole_or_by_query_tiles_gives_the_stored_maps_outputs_and_gradients(
        bool cross, bool trainProjections, bool causal, int tileRows)
    {
        using var scope = NewDisposeScope();
        var grads = new List<Dictionary<string, Tensor>>();
        var outputs = new List<Tensor>();
        foreach (bool recompute in new[] { true, false })
        {
            torch.manual_seed(8);
            var attn = new MultiHeadAttention(24, 6, contextDim: cross ? 12 : null);
            attn.to(ScalarType.Float64).train();
            var mixing = CoeffTuning.Apply(attn, new CoeffConfig(dropout: 0.2)).Values.Single();
            mixing.RecomputeMaps = recompute;
            // A row of the maps is 2 x 6 x Nk float64 values.
            mixing.TileBytes = tileRows * 2 * 6 * (cross ? 7 : 5) * sizeof(double);
            if (!trainProjections)
                foreach (var p in attn.parameters()) p.requires_grad = false;
            mixing.alpha.requires_grad = true;
            using (no_grad()) mixing.alpha.copy_(randn(6, 6, ScalarType.Float64) * 0.3);
            var x = randn(new long[] { 2, 5, 24 }, ScalarType.Float64);
            var ctx = cross ? randn(new long[] { 2, 7, 12 }, ScalarType.Float64) : null;
            Tensor? mask = null;
            if (cross)
            {
                mask = ones(2, 7, ScalarType.Bool);
                mask[1, TensorIndex.Slice(4)] = false;
            }
            var w = randn(new long[] { 2, 5, 24 }, ScalarType.Float64);
            var y = attn.forward(x, ctx, mask, causal);
            (y * w).sum().backward();
            outputs.Add(y.detach());
            grads.Add(attn.named_parameters().Where(p => p.parameter.requires_grad)
                .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone()));
        }
        Assert.True(MaxAbsDiff(outputs[0], outputs[1]) <= 1e-12);
        Assert.Equal(trainProjections ? 9 : 1, grads[1].Count);
        Assert.Equal(grads[1].Keys.Order(), grads[0].Keys.Order());
        foreach (var (name, g) in grads[0])
            Assert.True(MaxAbsDiff(g, grads[1][name]) <= 1e-10, $"{name}: {MaxAbsDiff(g, grads[1][name])}");
    }

    [Fact]
    public void A_tile_takes_as_many_query_rows_as_fit_its_bytes_and_at_least_one()
    {
        // A row of (B=2, H=12, Nk=1024) float32 maps is 98,304 bytes.
        Assert.Equal(16, TiledMixedAttention.TileRows(2, 12, 1024, 4, 16 * 98_304 + 100));
        Assert.Equal(1, TiledMixedAttention.TileRows(2, 12, 1024, 4, 1_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoeffMixing(4, new CoeffConfig()) { TileBytes = -1 });
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]     // one query row per tile
    public void Recomputed_maps_gradient_wrt_the_input_matches_central_finite_differences(int tileRows)
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(12);
        var attn = new MultiHeadAttention(8, 2);
        attn.to(ScalarType.Float64).eval();
        var mixing = CoeffTuning.Apply(attn).Values.Single();
        mixing.RecomputeMaps = true;
        mixing.TileBytes = tileRows * 1 * 2 * 4 * sizeof(double);
        using (no_grad()) mixing.alpha.copy_(randn(2, 2, ScalarType.Float64) * 0.5);
        var x = randn(new long[] { 1, 4, 8 }, ScalarType.Float64).requires_grad_();
        var w = randn(new long[] { 1, 4, 8 }, ScalarType.Float64);
        (attn.forward(x) * w).sum().backward();
        var analytic = Values(x.grad!);
        var flat = x.detach().view(-1);
        const double eps = 1e-6;
        double worst = 0;
        for (int i = 0; i < analytic.Length; i++)
        {
            double orig = flat[i].ToDouble();
            double Loss(double at) { using var _ = no_grad(); flat[i] = at; return (attn.forward(x) * w).sum().ToDouble(); }
            double numeric = (Loss(orig + eps) - Loss(orig - eps)) / (2 * eps);
            flat[i] = orig;
            worst = Math.Max(worst, Math.Abs(numeric - analytic[i]) / Math.Max(1.0, Math.Abs(numeric)));
        }
        Assert.True(worst <= 1e-7, $"worst error {worst:E2}");
    }

    [Fact]
    public void Mixed_row_sums_equal_row_sums_of_alpha_prime_and_entries_go_negative()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(5);
        var mixing = new CoeffMixing(6, new CoeffConfig());
        mixing.eval();
        using (no_grad()) mixing.alpha.copy_(randn(6, 6));
        var maps = RandomMaps(3, 6, 5, 8, ScalarType.Float32);
        var mixed = mixing.call(maps);
        var rowSums = mixed.sum(-1);                                            // (3, 6, 5)
        var expected = (eye(6) + mixing.alpha).sum(1).view(1, 6, 1).expand_as(rowSums);
        Assert.True(MaxAbsDiff(rowSums, expected) <= 1e-5, $"row sums differ by {MaxAbsDiff(rowSums, expected)}");
        Assert.True(mixed.min().ToDouble() < 0);
        // Hand-computed entry: Fhat^0 = sum_i alpha'[0, i] F^i.
        var a = Values(eye(6) + mixing.alpha);
        double byHand = Enumerable.Range(0, 6).Sum(i => a[i] * maps[1, i, 2, 3].ToDouble());
        Assert.Equal(byHand, mixed[1, 0, 2, 3].ToDouble(), 5);
    }

    [Fact]
    public void Evaluation_is_deterministic_and_ignores_dropout()
    {
        using var scope = NewDisposeScope();
        var mixing = new CoeffMixing(8, new CoeffConfig(dropout: 0.5));
        using (no_grad()) mixing.alpha.fill_(0.25);
        mixing.eval();
        var m1 = mixing.MixingMatrix();
        var m2 = mixing.MixingMatrix();
        Assert.Equal(0.0, MaxAbsDiff(m1, m2));
        Assert.Equal(0.0, MaxAbsDiff(m1, eye(8) + 0.25));
    }

    [Fact]
    public void Training_drops_alpha_entries_at_rate_p_and_scales_the_kept_ones()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(6);
        const double p = 0.3;
        const int h = 64;
        var mixing = new CoeffMixing(h, new CoeffConfig(dropout: p));
        using (no_grad()) mixing.alpha.fill_(1.0);
        mixing.train();
        var dropped = Values(mixing.MixingMatrix() - eye(h));
        int zeros = dropped.Count(v => v == 0.0);
        int scaled = dropped.Count(v => Math.Abs(v - 1.0 / (1 - p)) < 1e-6);
        Assert.Equal(h * h, zeros + scaled);                     // every entry is dropped or scaled by 1/(1-p)
        double rate = zeros / (double)(h * h);
        double sigma = Math.Sqrt(p * (1 - p) / (h * h));         // binomial standard error: 0.0072
        Assert.InRange(rate, p - 4 * sigma, p + 4 * sigma);
    }

    [Fact]
    public void Zero_dropout_in_training_equals_evaluation()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        var mixing = new CoeffMixing(4, new CoeffConfig(dropout: 0.0));
        using (no_grad()) mixing.alpha.copy_(randn(4, 4));
        var maps = RandomMaps(2, 4, 3, 3);
        mixing.train();
        var train = mixing.call(maps);
        mixing.eval();
        var eval = mixing.call(maps);
        Assert.Equal(0.0, MaxAbsDiff(train, eval));
    }

    [Fact]
    public void Direct_parameterisations_start_at_identity_or_random()
    {
        using var scope = NewDisposeScope();
        var identity = new CoeffMixing(5, new CoeffConfig(parameterization: AlphaParameterization.DirectIdentity));
        identity.eval();
        Assert.Equal(0.0, MaxAbsDiff(identity.MixingMatrix(), eye(5)));
        var maps = RandomMaps(1, 5, 4, 4);
        Assert.Equal(0.0, MaxAbsDiff(identity.call(maps), maps));
        var random = new CoeffMixing(5, new CoeffConfig(parameterization: AlphaParameterization.DirectRandom));
        random.eval();
        Assert.True(MaxAbsDiff(random.MixingMatrix(), eye(5)) > 0.05);
        Assert.True(random.alpha.abs().max().ToDouble() <= 1 / Math.Sqrt(5) + 1e-6);
    }

    [Fact]
    public void Twelve_layers_of_twelve_heads_add_exactly_1728_trainable_parameters()
    {
        using var scope = NewDisposeScope();
        var vit = new VisionTransformer(new VitConfig { ImageSize = 8, PatchSize = 4, Channels = 1, Dim = 48, Depth = 12, Heads = 12, MlpDim = 48, Classes = 2 });
        long before = vit.parameters().Sum(p => p.numel());
        var attached = CoeffTuning.Apply(vit);
        long after = vit.parameters().Sum(p => p.numel());
        Assert.Equal(12, attached.Count);
        Assert.Equal(1728, after - before);
        Assert.Equal(1728, attached.Values.Sum(m => m.alpha.numel()));
        // alpha is saved under the layer's path; the identity constant is not.
        var keys = vit.state_dict().Keys.ToList();
        Assert.Contains("blocks.0.attn.mixing.alpha", keys);
        Assert.DoesNotContain(keys, k => k.EndsWith("identity"));
    }

    [Fact]
    public void Invalid_config_names_the_bad_value()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new CoeffConfig(dropout: 1.5));
        Assert.Contains("dropout", e.Message);
        Assert.Contains("1.5", e.Message);
    }
}
