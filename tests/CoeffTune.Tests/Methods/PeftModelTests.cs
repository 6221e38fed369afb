using CoeffTune.Methods;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static CoeffTune.Tests.TestUtil;

namespace CoeffTune.Tests.Methods;

public class PeftModelTests
{
    public static TheoryData<string> Recipes => new() { "coeff", "lora", "dora", "ssf", "bitfit", "linear", "full", "coeff+lora", "coeff+dora", "coeff+ssf" };

    [Theory]
    [MemberData(nameof(Recipes))]
    public void Every_method_at_initialisation_leaves_the_output_unchanged(string recipe)
    {
        using var scope = NewDisposeScope();
        foreach (var (model, batch) in new (TransformerClassifier, Batch)[] { (TinyModels.Bert(), TinyModels.TextBatch()), (TinyModels.Vit(), TinyModels.ImageBatch()) })
        {
            var before = model.forward(batch);
            PeftModel.Wrap(model, recipe);
            model.eval();
            var after = model.forward(batch);
            Assert.True(MaxAbsDiff(before, after) <= 1e-6, $"{recipe} on {model.Architecture}: {MaxAbsDiff(before, after)}");
        }
    }

    [Theory]
    [InlineData("coeff+lora")]
    [InlineData("coeff+dora")]
    [InlineData("ssf")]
    [InlineData("bitfit")]
    public void One_optimiser_step_changes_only_the_recipes_parameters(string recipe)
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, recipe);
        model.train();
        var before = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        // Weight decay 0: a parameter can then only move through its gradient, so a change proves a gradient reached it.
        var groups = peft.ParameterGroups(1e-2, 0.0);
        var opt = optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters, lr: g.LearningRate, weight_decay: 0.0)));
        var batch = TinyModels.TextBatch();
        // Two steps: after one, LoRA's A has no gradient yet (B starts at zero).
        for (int i = 0; i < 2; i++)
        {
            opt.zero_grad();
            nn.functional.cross_entropy(model.forward(batch), batch.Labels!).backward();
            opt.step();
        }
        var trainable = peft.TrainableNames.ToHashSet();
        foreach (var (name, after) in model.state_dict())
        {
            bool same = MaxAbsDiff(before[name], after) == 0.0;
            if (trainable.Contains(name)) Assert.False(same, $"{name} is trainable but did not change");
            else Assert.True(same, $"{name} is frozen but changed");
        }
        Assert.All(model.named_parameters(), p => Assert.Equal(trainable.Contains(p.name), p.parameter.requires_grad));
    }

    private static void Perturb(PeftModel peft, int seed)
    {
        torch.manual_seed(seed);
        using var _ = no_grad();
        foreach (var name in peft.TrainableNames)
        {
            var t = peft.Model.state_dict()[name];
            t.add_(randn_like(t) * 0.1);
        }
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("dora")]
    [InlineData("ssf")]
    [InlineData("coeff+dora")]
    [InlineData("coeff+lora+ssf")]
    public void Merged_output_equals_unmerged_and_unmerge_restores_the_weights(string recipe)
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var peft = PeftModel.Wrap(model, recipe);
        Perturb(peft, 1);
        model.eval();
        var batch = TinyModels.TextBatch();
        var unmerged = model.forward(batch);
        var weights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var summary = peft.Merge();
        var merged = model.forward(batch);
        Assert.True(MaxAbsDiff(unmerged, merged) <= 1e-5, $"merged differs by {MaxAbsDiff(unmerged, merged)}");
        Assert.Equal(recipe.Contains("coeff"), summary.Contains("coeff stays a runtime operation"));
        peft.Unmerge();
        foreach (var (name, w) in model.state_dict())
            Assert.True(MaxAbsDiff(weights[name], w) <= 1e-6, $"{name} not restored: {MaxAbsDiff(weights[name], w)}");
        Assert.True(MaxAbsDiff(unmerged, model.forward(batch)) <= 1e-6);
    }

    [Fact]
    public void Dora_forward_equals_magnitude_times_normalised_direction()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(2);
        var linear = nn.Linear(6, 5);
        var layer = new DoraLayer(linear, new LoraConfig(rank: 2, alpha: 4));
        using (no_grad())
        {
            layer.lora_B.weight!.copy_(randn(5, 2));
            layer.magnitude.copy_(rand(5) + 0.5);
        }
        var x = randn(3, 6);
        var y = linear.call(x);
        var w = linear.weight! + matmul(layer.lora_B.weight!, layer.lora_A.weight!) * 2.0;   // s = 4 / 2
        var direct = matmul(x, (w * (layer.magnitude / w.norm(1, false, 2)).unsqueeze(1)).t()) + linear.bias!;
        Assert.True(MaxAbsDiff(y, direct) <= 1e-5, $"{MaxAbsDiff(y, direct)}");
        // The magnitude started at the row norms of W (B was zero).
        var fresh = new DoraLayer(nn.Linear(6, 5), new LoraConfig(rank: 2));
        Assert.True(MaxAbsDiff(fresh.magnitude, fresh.Base.weight!.norm(1, false, 2)) <= 1e-6);
    }

    [Fact]
    public void Disabling_adapters_gives_back_the_base_model()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        var batch = TinyModels.TextBatch();
        var baseOut = model.forward(batch);
        var peft = PeftModel.Wrap(model, "coeff+dora+ssf");
        Perturb(peft, 3);
        // The head is trained in every recipe; put it back to compare the backbone alone.
        var head = model.Head;
        var adapted = model.forward(batch);
        Assert.True(MaxAbsDiff(adapted, baseOut) > 1e-3);
        using (peft.DisableAdapters())
        {
            var disabled = model.forward(batch);
            var backbone = TinyModels.Bert();
            using (no_grad()) { backbone.Head.weight!.copy_(head.weight!); backbone.Head.bias!.copy_(head.bias!); }
            Assert.True(MaxAbsDiff(disabled, backbone.forward(batch)) <= 1e-6);
        }
        Assert.True(MaxAbsDiff(adapted, model.forward(batch)) <= 1e-6);
    }

    [Fact]
    public void Trainable_report_counts_each_method_and_the_head()
    {
        using var scope = NewDisposeScope();
        // A 12-layer, 12-head, 768-wide encoder (small vocabulary to keep it light).
        var model = new BertClassifier(BertConfig.Base(classes: 2) with { VocabSize = 100, MaxPositions = 32 });
        var peft = PeftModel.Wrap(model, "coeff+lora");
        var r = peft.Report();
        Assert.Equal(1728, r.PerMethod.Single(m => m.Method == "coeff").Count);
        Assert.Equal(12 * 2 * 8 * (768 + 768), r.PerMethod.Single(m => m.Method == "lora").Count);   // q and v, rank 8
        Assert.Equal(768 * 2 + 2, r.Head);
        Assert.Equal(model.parameters().Where(p => p.requires_grad).Sum(p => p.numel()), r.Total);
        Assert.StartsWith("trainable: 1,728 coeff + 294,912 lora + 1,538 head = 298,178 of ", r.ToString());
    }

    /// <summary>Hand-counted on a 12-layer, 12-head, 768-wide encoder (FFN 3072, mean pooling, no pooler).</summary>
    [Theory]
    [InlineData("coeff", 12 * 144)]
    [InlineData("lora", 12 * 2 * 8 * (768 + 768))]                              // rank 8 on query and value
    [InlineData("dora", 12 * 2 * (8 * (768 + 768) + 768))]                      // + a magnitude per output feature
    [InlineData("ssf", 2 * (12 * (4 * 768 + 3072 + 768 + 2 * 768) + 768))]      // scale+shift after every Linear and LayerNorm
    [InlineData("bitfit", 12 * (4 * 768 + 3072 + 768 + 2 * 768) + 768)]         // every bias, LayerNorms' included
    [InlineData("linear", 0)]
    [InlineData("coeff+lora", 12 * 144 + 12 * 2 * 8 * (768 + 768))]
    public void Trainable_parameters_on_a_base_sized_encoder_match_hand_counts(string recipe, long expected)
    {
        using var scope = NewDisposeScope();
        var model = new BertClassifier(BertConfig.Base(classes: 2) with { VocabSize = 100, MaxPositions = 32 });
        var r = PeftModel.Wrap(model, recipe).Report();
        Assert.Equal(expected, r.Total - r.Head);
        Assert.Equal(768 * 2 + 2, r.Head);
    }

    [Fact]
    public void A_target_pattern_that_matches_nothing_names_the_pattern_and_the_closest_modules()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() =>
            PeftModel.Wrap(TinyModels.Bert(), new LoraConfig(targetModules: new[] { "qeury" })));
        Assert.Contains("'qeury'", e.Message);
        Assert.Contains("layers.0.attention.query", e.Message);
    }

    [Fact]
    public void Wrapping_a_layer_twice_is_an_error()
    {
        using var scope = NewDisposeScope();
        var model = TinyModels.Bert();
        PeftModel.Wrap(model, "coeff+lora");
        Assert.Throws<InvalidOperationException>(() => PeftModel.Wrap(model, "lora"));
        Assert.Throws<InvalidOperationException>(() => PeftModel.Wrap(model, "coeff"));
        Assert.Throws<ArgumentException>(() => PeftModel.Wrap(TinyModels.Bert(), "lora+dora"));
    }

    [Fact]
    public void Regex_and_exact_targets_select_the_named_layers()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Bert(), new LoraConfig(targetModules: new[] { "re:layers\\.1\\.(intermediate|output)", "layers.0.attention.key" }));
        Assert.Equal(new[] { "layers.1.intermediate", "layers.1.output", "layers.0.attention.key" }, peft.Methods[0].Targets);
    }

    [Fact]
    public void Each_method_has_its_own_parameter_group()
    {
        using var scope = NewDisposeScope();
        var peft = PeftModel.Wrap(TinyModels.Bert(), new CoeffTune.Methods.Coeff.CoeffConfig(learningRate: 2e-4, weightDecay: 1e-6), new LoraConfig(learningRate: 5e-4, weightDecay: 0.01));
        var groups = peft.ParameterGroups(1e-3, 0.05);
        Assert.Equal(new[] { "coeff", "lora", "head" }, groups.Select(g => g.Method).ToArray());
        Assert.Equal((2e-4, 1e-6), (groups[0].LearningRate, groups[0].WeightDecay));
        Assert.Equal((5e-4, 0.01), (groups[1].LearningRate, groups[1].WeightDecay));
        Assert.Equal((1e-3, 0.05), (groups[2].LearningRate, groups[2].WeightDecay));
    }
}
