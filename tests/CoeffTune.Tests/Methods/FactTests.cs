using CoeffTune.Methods;
using CoeffTune.Methods.Fact;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

public sealed class FactTests
{
    /// <summary>
    /// Hand count on ViT-B (D 768, 12 layers, MLP 3072 = 4 D), rank 8: U and V 2 x 768 x 8 = 12,288 once; per layer four
    /// 8 x 8 cores (query, key, value, output) and the MLP's 32 x 8 and 8 x 32 cores, 4 x 64 + 2 x 256 = 768; 12 x 768 = 9,216.
    /// </summary>
    [Fact]
    public void Parameters_on_vit_b_match_the_hand_count()
    {
        Assert.Equal(2 * 768 * 8 + 12 * (4 * 8 * 8 + 2 * 32 * 8), MethodTestKit.VitBaseCount("fact"));
        Assert.Equal(21_504, MethodTestKit.VitBaseCount("fact"));
        Assert.Equal(12 * 144 + 21_504, MethodTestKit.VitBaseCount("coeff+fact"));
    }

    [Theory]
    [InlineData("fact")]
    [InlineData("coeff+fact")]
    public void A_fresh_fact_leaves_the_outputs_unchanged(string recipe)
    {
        using var scope = NewDisposeScope();
        foreach (var (model, batch) in MethodTestKit.Tiny())
        {
            var before = model.forward(batch);
            var peft = PeftModel.Wrap(model, recipe);
            Assert.Equal(0.0, peft.Method<FactMethod>().V.weight!.abs().max().ToDouble());
            model.eval();
            Assert.True(MaxAbsDiff(before, model.forward(batch)) <= 1e-6, $"{recipe} on {model.Architecture}");
        }
    }

    [Fact]
    public void Every_projection_gains_s_times_v_core_u_built_block_by_block()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Vit();      // D 32, MLP 64 = 2 D
        var peft = PeftModel.Wrap(model, new FactConfig(rank: 4, scale: 10, dropout: 0.5));
        MethodTestKit.Perturb(peft, 3);
        model.eval();
        var fact = peft.Method<FactMethod>();
        Assert.Equal(new[] { "query", "key", "value", "output", "fc1", "fc2" }, fact.Targets.Take(6).Select(t => t.Split('.')[^1]));
        var u = fact.U.weight!;     // (4, 32)
        var v = fact.V.weight!;     // (32, 4)
        var state = model.state_dict();
        foreach (var (path, blocksOut, blocksIn) in new[] { ("blocks.0.attn.value", 1, 1), ("blocks.1.mlp.fc1", 2, 1), ("blocks.1.mlp.fc2", 1, 2) })
        {
            var core = state[$"{path}.fact_core"];
            Assert.Equal(new long[] { blocksOut * 4, blocksIn * 4 }, core.shape);
            // Block (o, i) of the update: s V C[o, i] U, each a D x D matrix.
            var rows = Enumerable.Range(0, blocksOut).Select(o => cat(Enumerable.Range(0, blocksIn)
                .Select(i => matmul(matmul(v, core[(o * 4)..(o * 4 + 4), (i * 4)..(i * 4 + 4)]), u) * 10.0).ToArray(), 1)).ToArray();
            var delta = cat(rows, 0);
            var linear = (TorchSharp.Modules.Linear)model.named_modules().Single(m => m.name == path).module;
            torch.manual_seed(9);
            var x = randn(3, 5, blocksIn * 32);
            var expected = matmul(x, (linear.weight! + delta).t()) + linear.bias!;
            Assert.True(MaxAbsDiff(linear.call(x), expected) <= 1e-4, path);
            Assert.True(MaxAbsDiff(fact.DeltaWeight(path), delta) <= 1e-5, path);
        }
    }

    [Fact]
    public void Gradients_of_the_shared_factors_match_finite_differences_in_float64()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Vit();
        model.to(ScalarType.Float64);
        var peft = PeftModel.Wrap(model, new FactConfig(rank: 4, scale: 2));
        MethodTestKit.Perturb(peft, 4, scale: 0.3);
        model.eval();
        var fact = peft.Method<FactMethod>();
        var batch = TinyModels.ImageBatch();
        var images = batch.Inputs.to(ScalarType.Float64);
        torch.manual_seed(2);
        var weights = randn(4, 3, ScalarType.Float64);
        double Loss() { using var s = NewDisposeScope(); using var g = no_grad(); return (model.forward(new Batch(images)) * weights).sum().ToDouble(); }

        var loss = (model.forward(new Batch(images)) * weights).sum();
        loss.backward();
        var state = model.state_dict();
        var core = state["blocks.1.mlp.fc2.fact_core"];
        foreach (var p in new[] { fact.U.weight!, fact.V.weight!, core })
        {
            var grad = p.grad!.view(-1);
            // Entries spread over the tensor, the first and last included.
            foreach (long i in new long[] { 0, p.numel() / 3, p.numel() / 2 + 1, p.numel() - 1 })
            {
                double numeric = MethodTestKit.FiniteDifference(Loss, p, i);
                double analytic = grad[i].ToDouble();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 * Math.Max(1, Math.Abs(analytic)), $"entry {i}: autograd {analytic}, finite difference {numeric}");
            }
        }
    }

    [Theory]
    [InlineData("fact")]
    [InlineData("coeff+fact")]
    public void Merged_output_equals_unmerged_and_unmerge_restores_the_weights(string recipe) =>
        MethodTestKit.AssertMergeIsExact(recipe, "fact", seed: 6);

    [Fact]
    public void Adapter_files_round_trip_to_identical_outputs()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(0.0, MethodTestKit.RoundTripDifference("coeff+fact",
            new Dictionary<string, System.Text.Json.Nodes.JsonObject> { ["fact"] = new() { ["r"] = 4, ["scale"] = 10.0 } }));
    }

    [Fact]
    public void Shared_factors_are_saved_under_their_own_names_and_targets_are_checked()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Bert(), new FactConfig(rank: 4));
        Assert.Contains("fact_u.weight", peft.TrainableNames);
        Assert.Contains("fact_v.weight", peft.TrainableNames);
        Assert.Equal("base_model.model.fact_u.weight", CoeffTune.Adapters.AdapterFile.KeyFor("bert", "fact_u.weight"));
        // Every attention projection and both MLP projections of each layer; the head is left alone.
        Assert.Equal(2 * 6, peft.Methods[0].Targets.Count);
        Assert.DoesNotContain(peft.Methods[0].Targets, t => t.StartsWith("classifier"));
        var e = Assert.Throws<ArgumentException>(() => PeftModel.Wrap(TinyModels.Bert(), new FactConfig(targetModules: ["classifier"])));
        Assert.Contains("classifier", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FactConfig(rank: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FactConfig(scale: 0));
    }
}
