using CoeffTune.Attention;
using CoeffTune.Methods;
using CoeffTune.Methods.Adapter;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

public sealed class AdapterTests
{
    /// <summary>
    /// Hand count on ViT-B, bottleneck 8: each adapter has down 768 x 8 + 8 and up 8 x 768 + 768, 13,064; two per layer
    /// (after the attention and after the MLP), 12 layers.
    /// </summary>
    [Fact]
    public void Parameters_on_vit_b_match_the_hand_count()
    {
        Assert.Equal(12 * 2 * (768 * 8 + 8 + 8 * 768 + 768), MethodTestKit.VitBaseCount("adapter"));
        Assert.Equal(313_536, MethodTestKit.VitBaseCount("adapter"));
    }

    [Theory]
    [InlineData("adapter")]
    [InlineData("coeff+adapter")]
    public void A_fresh_adapter_leaves_the_outputs_unchanged(string recipe)
    {
        using var scope = NewDisposeScope();
        foreach (var (model, batch) in MethodTestKit.Tiny())
        {
            var before = model.forward(batch);
            PeftModel.Wrap(model, recipe);
            model.eval();
            Assert.True(MaxAbsDiff(before, model.forward(batch)) <= 1e-6, $"{recipe} on {model.Architecture}");
        }
    }

    [Fact]
    public void Adapters_follow_every_attention_and_mlp_output_and_add_a_gelu_bottleneck_to_it()
    {
        using var scope = NewDisposeScope();
        var bert = TinyModels.Bert();
        var peft = PeftModel.Wrap(bert, new AdapterConfig(size: 3));
        Assert.Equal(new[] { "layers.0.attention", "layers.0.output", "layers.1.attention", "layers.1.output" }, peft.Methods[0].Targets);
        var vit = PeftModel.Wrap(TinyModels.Vit(), new AdapterConfig(size: 3));
        Assert.Equal(new[] { "blocks.0.attn", "blocks.0.mlp.fc2", "blocks.1.attn", "blocks.1.mlp.fc2" }, vit.Methods[0].Targets);

        MethodTestKit.Perturb(peft, 2);
        bert.eval();
        var attention = bert.layers[0].attention;
        var adapter = peft.Method<AdapterMethod>().Adapters["layers.0.attention"];
        torch.manual_seed(3);
        var x = randn(2, 5, 32);
        Tensor plain;
        using (peft.DisableAdapters()) plain = attention.forward(x);
        var hidden = nn.functional.gelu(matmul(plain, adapter.down.weight!.t()) + adapter.down.bias!);
        var expected = plain + matmul(hidden, adapter.up.weight!.t()) + adapter.up.bias!;
        Assert.True(MaxAbsDiff(attention.forward(x), expected) <= 1e-5);
    }

    [Fact]
    public void Adapter_files_round_trip_to_identical_outputs()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(0.0, MethodTestKit.RoundTripDifference("coeff+adapter",
            new Dictionary<string, System.Text.Json.Nodes.JsonObject> { ["adapter"] = new() { ["size"] = 4 } }));
    }

    [Fact]
    public void Merging_leaves_adapters_at_runtime_and_says_so()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Vit(), "coeff+adapter");
        var summary = peft.Merge();
        Assert.Contains("adapter stay a runtime operation", summary);
        var e = Assert.Throws<ArgumentException>(() => PeftModel.Wrap(TinyModels.Vit(), new AdapterConfig(targetModules: ["norm"])));
        Assert.Contains("'norm'", e.Message);
    }
}
