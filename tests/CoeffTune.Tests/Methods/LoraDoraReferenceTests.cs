using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Methods;

/// <summary>LoRA and DoRA on one Linear, against values computed here by hand from their papers' formulas.</summary>
public sealed class LoraDoraReferenceTests
{
    [Fact]
    public void Lora_output_is_w_x_plus_b_plus_alpha_over_r_times_b_a_x()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(1);
        var linear = nn.Linear(5, 3).to(ScalarType.Float64);
        var lora = new LoraLayer(linear, new LoraConfig(rank: 2, alpha: 6));   // scaling 6 / 2 = 3
        Assert.Equal(3.0, lora.Scaling);
        using (no_grad())
        {
            lora.lora_A.weight!.copy_(tensor(new double[] { 1, 0, 2, 0, -1, 0, 1, 0, 3, 1 }, new long[] { 2, 5 }));
            lora.lora_B.weight!.copy_(tensor(new double[] { 1, -1, 0, 2, 0.5, 0.5 }, new long[] { 3, 2 }));
        }
        var x = tensor(new double[] { 0.5, -1, 2, 1, -0.5 }, new long[] { 1, 5 });
        var y = linear.call(x).data<double>().ToArray();
        var w = linear.weight!.data<double>().ToArray();
        var b = linear.bias!.data<double>().ToArray();
        double[] xs = { 0.5, -1, 2, 1, -0.5 };
        // W x + b + 3 B (A x), in loops over plain arrays.
        double[] a = { 1, 0, 2, 0, -1, 0, 1, 0, 3, 1 }, bb = { 1, -1, 0, 2, 0.5, 0.5 };
        var ax = new double[2];
        for (int r = 0; r < 2; r++) for (int i = 0; i < 5; i++) ax[r] += a[r * 5 + i] * xs[i];
        for (int o = 0; o < 3; o++)
        {
            double expected = b[o];
            for (int i = 0; i < 5; i++) expected += w[o * 5 + i] * xs[i];
            for (int r = 0; r < 2; r++) expected += 3 * bb[o * 2 + r] * ax[r];
            Assert.Equal(expected, y[o], 12);
        }
    }

    [Fact]
    public void Lora_dropout_drops_inputs_of_the_low_rank_path_in_training_only()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var linear = nn.Linear(64, 64, hasBias: false).to(ScalarType.Float64);
        var lora = new LoraLayer(linear, new LoraConfig(rank: 64, alpha: 64, dropout: 0.5));   // scaling 1
        using (no_grad())
        {
            lora.lora_A.weight!.copy_(eye(64, dtype: ScalarType.Float64));
            lora.lora_B.weight!.copy_(eye(64, dtype: ScalarType.Float64));
        }
        var x = rand(32, 64, ScalarType.Float64) + 0.5;
        using (no_grad()) linear.weight!.zero_();   // y is then the low-rank path alone: dropout(x) here
        linear.eval();
        Assert.True(linear.call(x).allclose(x), "evaluation applies no dropout");
        linear.train();
        var ratio = (linear.call(x) / x).data<double>().ToArray();
        // Each input is dropped (0) or kept and scaled by 1 / (1 - p) = 2, about half of each.
        Assert.All(ratio, r => Assert.True(Math.Abs(r) < 1e-12 || Math.Abs(r - 2) < 1e-12, $"ratio {r}"));
        double dropped = ratio.Count(r => Math.Abs(r) < 1e-12) / (double)ratio.Length;
        Assert.InRange(dropped, 0.45, 0.55);   // 2,048 draws: 0.5 +- 0.05 is over 4 standard deviations
    }

    [Fact]
    public void Dora_detaches_the_weight_norm_in_the_backward_pass()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(3);
        var linear = nn.Linear(6, 4).to(ScalarType.Float64);
        var dora = new DoraLayer(linear, new LoraConfig(rank: 2, alpha: 4));
        using (no_grad())
        {
            dora.lora_B.weight!.copy_(randn(4, 2, ScalarType.Float64));
            dora.magnitude.mul_(1.5);
        }
        var x = randn(5, 6, ScalarType.Float64);
        var ours = Grad(() => linear.call(x).pow(2).sum(), dora.lora_B.weight!);

        // y = m / ||W + sBA|| * (W + sBA) x + b, per output row; the norm a constant (detached) or not.
        Tensor Reference(bool detach)
        {
            var merged = linear.weight! + matmul(dora.lora_B.weight!, dora.lora_A.weight!) * 2.0;
            var norm = merged.norm(1, keepdim: false, p: 2);
            if (detach) norm = norm.detach();
            return (matmul(x, merged.t()) * (dora.magnitude / norm) + linear.bias!).pow(2).sum();
        }
        var detached = Grad(() => Reference(true), dora.lora_B.weight!);
        var through = Grad(() => Reference(false), dora.lora_B.weight!);
        Assert.True((ours - detached).abs().max().ToDouble() < 1e-10, "gradient with the norm detached");
        Assert.True((ours - through).abs().max().ToDouble() > 1e-4, "a norm that is not detached gives another gradient");
    }

    private static Tensor Grad(Func<Tensor> loss, Tensor parameter)
    {
        parameter.grad?.zero_();
        loss().backward();
        var g = parameter.grad!.clone();
        parameter.grad!.zero_();
        return g;
    }
}
