using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Vpt;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

public sealed class VptTests
{
    /// <summary>Hand count on ViT-B: 10 prompts of 768 per layer, 12 layers.</summary>
    [Fact]
    public void Parameters_on_vit_b_match_the_hand_count()
    {
        Assert.Equal(12 * 10 * 768, MethodTestKit.VitBaseCount("vpt"));
        Assert.Equal(92_160, MethodTestKit.VitBaseCount("vpt"));
    }

    /// <summary>VPT-Deep written out by hand on the ViT's blocks: prompts after the class token at each block's input, dropped at its output.</summary>
    [Fact]
    public void Vit_with_deep_prompts_equals_the_blocks_run_by_hand()
    {
        using var scope = NewDisposeScope();
        var vit = TinyModels.Vit();
        var batch = TinyModels.ImageBatch();
        var baseLogits = vit.forward(batch);
        var peft = PeftModel.Wrap(vit, new VptConfig(tokens: 3));
        vit.eval();
        var prompts = peft.Method<VptMethod>().Prompts.prompts;
        Assert.Equal(new long[] { 2, 3, 32 }, prompts.shape);

        var x = vit.patch_embed.call(batch.Inputs);
        x = cat(new[] { vit.cls_token.expand(x.shape[0], -1, -1), x }, 1) + vit.pos_embed;
        for (int i = 0; i < 2; i++)
        {
            var p = prompts[i].unsqueeze(0).expand(x.shape[0], -1, -1);
            var y = vit.blocks[i].call(cat(new[] { x[.., ..1], p, x[.., 1..] }, 1));
            Assert.Equal(1 + 3 + 4, y.shape[1]);
            x = cat(new[] { y[.., ..1], y[.., 4..] }, 1);
        }
        var expected = vit.head.call(vit.norm.call(x).select(1, 0));
        var logits = vit.forward(batch);
        Assert.True(MaxAbsDiff(logits, expected) <= 1e-6);
        Assert.True(MaxAbsDiff(logits, baseLogits) > 1e-3, "prompts change every attention map");
        using (peft.DisableAdapters()) Assert.True(MaxAbsDiff(vit.forward(batch), baseLogits) <= 1e-6);
    }

    /// <summary>
    /// Padding never reaches the prompts or the real tokens: a padded sequence gives what the same sequence alone gives.
    /// A prompt masked by mistake, or a mask shifted against the inserted tokens, would change the padded row's result.
    /// </summary>
    [Fact]
    public void Bert_prompts_are_never_masked_and_padding_stays_masked()
    {
        using var scope = NewDisposeScope();
        var bert = TinyModels.Bert();
        var peft = PeftModel.Wrap(bert, new VptConfig(tokens: 4));
        MethodTestKit.Perturb(peft, 8, scale: 1.0);
        bert.eval();
        var batch = TinyModels.TextBatch();           // row 1: 7 real tokens, row 3: 4
        var padded = bert.forward(batch);
        foreach (var (row, length) in new[] { (1, 7), (3, 4), (0, 10) })
        {
            var ids = batch.Inputs[row..(row + 1), ..length];
            var alone = bert.forward(new Batch(ids, ones(1, length, ScalarType.Int64)));
            Assert.True(MaxAbsDiff(padded[row..(row + 1)], alone) <= 1e-5, $"row {row}: {MaxAbsDiff(padded[row..(row + 1)], alone)}");
        }
        // The mask really is in play: the padding tokens, unmasked, would change row 1.
        var unmasked = bert.forward(new Batch(batch.Inputs, ones(4, 10, ScalarType.Int64)));
        Assert.True(MaxAbsDiff(unmasked[1..2], padded[1..2]) > 1e-4);
    }

    /// <summary>With coeff: the maps alpha mixes are over the prompts and the real tokens together, (N + P) x (N + P).</summary>
    [Fact]
    public void Coeff_mixes_maps_over_prompts_and_tokens()
    {
        using var scope = NewDisposeScope();
        var vit = TinyModels.Vit();
        var peft = PeftModel.Wrap(vit, "coeff+vpt", new Dictionary<string, System.Text.Json.Nodes.JsonObject> { ["vpt"] = new() { ["tokens"] = 3 } });
        var mixing = peft.Method<CoeffMethod>().Layer(0);
        mixing.RecomputeMaps = false;     // the maps then pass through the mixing module's forward
        var shapes = new List<long[]>();
        mixing.register_forward_hook((_, maps, y) => { shapes.Add(maps.shape); return y; });
        vit.eval();
        vit.forward(TinyModels.ImageBatch());
        Assert.Equal(new long[] { 4, 4, 1 + 3 + 4, 1 + 3 + 4 }, Assert.Single(shapes));
        Assert.Equal(4 * 4 * 2 + 2 * 3 * 32, peft.Report().Total - peft.Report().Head);
    }

    [Fact]
    public void Adapter_files_round_trip_to_identical_outputs()
    {
        using var scope = NewDisposeScope();
        Assert.Equal(0.0, MethodTestKit.RoundTripDifference("coeff+vpt",
            new Dictionary<string, System.Text.Json.Nodes.JsonObject> { ["vpt"] = new() { ["tokens"] = 2 } }));
        Assert.Equal("base_model.model.vpt.prompts", CoeffTune.Adapters.AdapterFile.KeyFor("vit", "vpt.prompts"));
    }

    /// <summary>
    /// All of Table 1's new methods at once, with coeff, on a float64 model: every added part takes the model's dtype,
    /// and the composed model computes what its float32 twin does.
    /// </summary>
    [Fact]
    public void The_new_methods_compose_and_take_the_models_dtype()
    {
        using var scope = NewDisposeScope();
        const string recipe = "coeff+fact+snell+adapter+vpt";
        var single = TinyModels.Vit();
        var peft = PeftModel.Wrap(single, recipe);
        Assert.Equal(new[] { "coeff", "fact", "snell", "adapter", "vpt" }, peft.Report().PerMethod.Select(m => m.Method));
        MethodTestKit.Perturb(peft, 9, scale: 0.05);
        var dbl = TinyModels.Vit();
        dbl.to(ScalarType.Float64);
        var peft64 = PeftModel.Wrap(dbl, recipe);
        Assert.All(dbl.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        var state = single.state_dict();
        using (no_grad())
            foreach (var (name, t) in dbl.state_dict()) t.copy_(state[name]);
        single.eval();
        dbl.eval();
        var batch = TinyModels.ImageBatch();
        var expected = single.forward(batch).to(ScalarType.Float64);
        var actual = dbl.forward(new Batch(batch.Inputs.to(ScalarType.Float64)));
        Assert.True(MaxAbsDiff(expected, actual) <= 1e-4, $"{MaxAbsDiff(expected, actual)}");
        Assert.True(peft64.TrainableNames.SequenceEqual(peft.TrainableNames));
    }

    [Fact]
    public void Flops_count_the_prompts_in_every_attention_layer()
    {
        using var scope = NewDisposeScope();
        var vit = TinyModels.Vit();
        using var one = new Batch(TinyModels.ImageBatch().Inputs[..1]);
        double before = FlopCounter.ForwardFlops(vit, one, 5);
        PeftModel.Wrap(vit, new VptConfig(tokens: 3));
        double after = FlopCounter.ForwardFlops(vit, one, 5);
        // Per block: the four projections and the MLP over 3 more tokens, and the two attention products over 8 x 8 instead of 5 x 5.
        double perBlock = 3 * 2.0 * (4 * 32 * 32 + 2 * 32 * 64) + 2.0 * 2 * (8 * 8 - 5 * 5) * 32;
        Assert.Equal(before + 2 * perBlock, after, 6);
    }
}
