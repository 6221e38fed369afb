using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Dora;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using CoeffTune.Tests.Models.Bart;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Methods;

/// <summary>Coeff-Tuning, LoRA and DoRA on BART: every kind of attention, adapters in PEFT's seq2seq layout, merging.</summary>
public sealed class BartPeftTests
{
    private static PeftModel Wrap(BartForConditionalGeneration model, params IMethodConfig[] configs) =>
        PeftModel.Wrap(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), configs);

    /// <summary>Every trainable tensor set to small random values, as if trained (LoRA's B is zero at the start).</summary>
    private static void Perturb(PeftModel peft, int seed)
    {
        torch.manual_seed(seed);
        var byName = peft.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var _ = no_grad();
        foreach (var name in peft.TrainableNames) byName[name].add_(randn_like(byName[name]) * 0.2);
    }

    private static Tensor Logits(BartForConditionalGeneration model)
    {
        var (ids, mask) = TinyBart.Sources();
        var decoder = tensor(new long[,] { { 2, 0, 5, 9 }, { 2, 0, 7, 3 }, { 2, 0, 9, 30 } });
        using var _ = no_grad();
        model.eval();
        return model.forward(ids, mask, decoder);
    }

    [Fact]
    public void Coeff_tuning_attaches_to_each_kind_of_attention_chosen_by_pattern()
    {
        using var model = TinyBart.Model();
        var all = Wrap(model, new CoeffConfig()).Method<CoeffMethod>();
        // Encoder self-attention has 4 heads (16 each), the decoder's two kinds 3 heads (9 each); 2 layers of each.
        Assert.Equal(new Dictionary<string, long> { ["encoder-self"] = 32, ["decoder-self"] = 18, ["decoder-cross"] = 18 },
            all.ParameterCounts(BartFamily.KindOf));
        Assert.Equal(6, all.Layers.Count);
        Assert.Contains("decoder.layers.1.encoder_attn", all.Targets);

        foreach (var (kind, pattern) in BartFamily.AttentionKinds)
        {
            using var fresh = TinyBart.Model();
            var peft = Wrap(fresh, new CoeffConfig(targetModules: new[] { pattern }));
            var coeff = peft.Method<CoeffMethod>();
            Assert.Equal(2, coeff.Layers.Count);
            Assert.All(coeff.Targets, t => Assert.Equal(kind, BartFamily.KindOf(t)));
            Assert.Equal(kind == "encoder-self" ? 32 : 18, peft.Report().Total);
        }
        // A pattern that picks nothing is an error naming it.
        using var other = TinyBart.Model();
        var e = Assert.Throws<ArgumentException>(() => Wrap(other, new CoeffConfig(targetModules: new[] { "cross_attn" })));
        Assert.Contains("'cross_attn' matches no module", e.Message);
    }

    [Fact]
    public void Lora_and_dora_wrap_query_and_value_of_all_three_kinds()
    {
        foreach (var config in new IMethodConfig[] { new LoraConfig(rank: 2), new DoraConfig(new LoraConfig(rank: 2)) })
        {
            using var model = TinyBart.Model();
            var peft = Wrap(model, config);
            var targets = peft.Methods[0].Targets.Order(StringComparer.Ordinal).ToList();
            var expected = new[] { "encoder.layers.{0}.self_attn", "decoder.layers.{0}.self_attn", "decoder.layers.{0}.encoder_attn" }
                .SelectMany(a => new[] { 0, 1 }.SelectMany(i => new[] { string.Format(a, i) + ".query", string.Format(a, i) + ".value" }))
                .Order(StringComparer.Ordinal).ToList();
            Assert.Equal(expected, targets);
            // rank 2 on 24 x 24: (24 + 24) * 2 = 96 per layer, DoRA adds a magnitude of 24.
            Assert.Equal(12 * (config is DoraConfig ? 96 + 24 : 96), peft.Report().Total);
        }
    }

    [Fact]
    public void Adapters_save_in_peft_seq2seq_names_and_load_back_to_the_same_outputs()
    {
        using var dir = new TempDir();
        using var model = TinyBart.Model(5);
        var peft = Wrap(model, new CoeffConfig(dropout: 0.2), new LoraConfig(rank: 2));
        Perturb(peft, 11);
        using var before = Logits(model);
        AdapterFile.Save(peft, dir.Path, "tiny-bart");

        var tensors = Safetensors.LoadStateDict(Path.Combine(dir.Path, AdapterFile.WeightsName));
        Assert.Contains("base_model.model.model.encoder.layers.0.self_attn.q_proj.lora_A.weight", tensors.Keys);
        Assert.Contains("base_model.model.model.decoder.layers.1.encoder_attn.v_proj.lora_B.weight", tensors.Keys);
        Assert.Contains("base_model.model.model.decoder.layers.0.encoder_attn.mixing.alpha", tensors.Keys);
        Assert.Contains("base_model.model.model.decoder.layers.0.self_attn.mixing.alpha", tensors.Keys);
        Assert.Equal(12 * 2 + 6, tensors.Count);
        foreach (var t in tensors.Values) t.Dispose();
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, AdapterFile.ConfigName)))!;
        Assert.Equal("SEQ_2_SEQ_LM", config["task_type"]!.GetValue<string>());
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal(new[] { "q_proj", "v_proj" }, config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));

        using var fresh = TinyBart.Model(5);
        var loaded = AdapterFile.Load(fresh, BartForConditionalGeneration.Architecture, Array.Empty<string>(), dir.Path);
        Assert.Equal("coeff+lora", loaded.Recipe);
        using var after = Logits(fresh);
        Assert.Equal(0.0, TestUtil.MaxAbsDiff(before, after));

        // Another base model is refused by its fingerprint.
        using var other = TinyBart.Model(6);
        Assert.Throws<InvalidDataException>(() => AdapterFile.Load(other, BartForConditionalGeneration.Architecture, Array.Empty<string>(), dir.Path));
    }

    [Fact]
    public void A_plain_peft_seq2seq_lora_folder_loads_as_bart()
    {
        // What Hugging Face PEFT writes for BartForConditionalGeneration: PEFT's fields only, no fingerprint or recipe.
        using var dir = new TempDir();
        using var model = TinyBart.Model(5);
        var peft = Wrap(model, new LoraConfig(rank: 2));
        Perturb(peft, 14);
        using var before = Logits(model);
        AdapterFile.Save(peft, dir.Path, "tiny-bart");
        var configPath = Path.Combine(dir.Path, AdapterFile.ConfigName);
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        foreach (var key in new[] { "format", "format_version", "key_layout", "recipe", "methods", "base_model", "labels", "trainable" }) config.Remove(key);
        File.WriteAllText(configPath, config.ToJsonString());

        var info = AdapterFile.ReadInfo(dir.Path);
        Assert.True(info.PeftOnly);
        Assert.Equal("bart", info.Architecture);
        using var fresh = TinyBart.Model(5);
        var loaded = AdapterFile.Load(fresh, BartForConditionalGeneration.Architecture, Array.Empty<string>(), dir.Path);
        Assert.Equal("lora", loaded.Recipe);
        using var after = Logits(fresh);
        Assert.Equal(0.0, TestUtil.MaxAbsDiff(before, after));
    }

    [Fact]
    public void Merged_lora_and_dora_compute_what_the_unmerged_adapters_do()
    {
        foreach (var config in new IMethodConfig[] { new LoraConfig(rank: 2), new DoraConfig(new LoraConfig(rank: 2)) })
        {
            using var model = TinyBart.Model(8);
            var peft = Wrap(model, new CoeffConfig(), config);
            Perturb(peft, 12);
            using var unmerged = Logits(model);
            var (ids, mask) = TinyBart.Sources();
            using var generatedBefore = Seq2SeqGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 6, NumBeams = 2 });
            var summary = peft.Merge();
            Assert.Contains($"merged {config.Method}", summary);
            Assert.Contains("coeff stays a runtime operation", summary);
            using var merged = Logits(model);
            double diff = TestUtil.MaxAbsDiff(unmerged, merged);
            Assert.True(diff < 1e-4, $"{config.Method}: merged logits differ by {diff}");
            using var generatedAfter = Seq2SeqGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 6, NumBeams = 2 });
            Assert.Equal(generatedBefore.Sequences, generatedAfter.Sequences);
            peft.Unmerge();
            using var back = Logits(model);
            Assert.True(TestUtil.MaxAbsDiff(unmerged, back) < 1e-4);
        }
    }

    [Fact]
    public void Disabled_adapters_give_the_base_model()
    {
        using var model = TinyBart.Model(9);
        using var base_ = Logits(model);
        var peft = Wrap(model, new CoeffConfig(), new LoraConfig(rank: 2));
        Perturb(peft, 13);
        using var adapted = Logits(model);
        Assert.True(TestUtil.MaxAbsDiff(base_, adapted) > 1e-3);
        using (peft.DisableAdapters())
        {
            using var off = Logits(model);
            Assert.True(TestUtil.MaxAbsDiff(base_, off) < 1e-6);
        }
    }
}
