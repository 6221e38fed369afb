using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// A LoRA trained on MiniLM from the command line, checked against what Hugging Face PEFT writes for
/// BertForSequenceClassification with the same targets: get_peft_model_state_dict keeps the lora_A / lora_B
/// weights of every targeted Linear and the modules to save (classifier), under "base_model.model." + the
/// transformers module path with the adapter name removed. The expected names below are spelled out from that
/// rule, not computed by the library.
/// </summary>
[Collection(RealModelsCollection.Name)]
public sealed class PeftLayoutTests(RealModelsFixture models)
{
    /// <summary>The fields PEFT's LoraConfig writes; everything else in adapter_config.json is this library's.</summary>
    private static readonly string[] PeftFields =
    [
        "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "r", "lora_alpha", "lora_dropout",
        "target_modules", "bias", "fan_in_fan_out", "use_rslora", "use_dora", "init_lora_weights", "modules_to_save",
        "layers_to_transform", "layers_pattern", "rank_pattern", "alpha_pattern",
    ];

    private static readonly string[] Texts = ["WIN a FREE prize, click now!!!", "Can we move the meeting to Friday?", "Your account statement is ready."];

    [SkippableFact]
    public void A_minilm_lora_adapter_has_pefts_key_names_and_config_and_loads_back_stripped_to_peft_fields()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        var (code, _, stderr) = CliRunner.Run("train", "--model", "minilm", "--task", "spam", "--method", "lora", "--train-size", "32",
            "--val-size", "16", "--test-size", "16", "--epochs", "1", "--batch-size", "16", "--max-tokens", "32", "--out", run);
        Assert.True(code == 0, stderr);
        var adapter = Path.Combine(run, FineTune.AdapterFolder);

        var expected = new HashSet<string> { "base_model.model.classifier.weight", "base_model.model.classifier.bias" };
        for (int i = 0; i < 6; i++)
            foreach (var proj in new[] { "query", "value" })
                foreach (var ab in new[] { "lora_A", "lora_B" })
                    expected.Add($"base_model.model.bert.encoder.layer.{i}.attention.self.{proj}.{ab}.weight");
        var tensors = TorchSharp.PyBridge.Safetensors.LoadStateDict(Path.Combine(adapter, AdapterFile.WeightsName));
        Assert.Equal(expected.OrderBy(k => k), tensors.Keys.OrderBy(k => k));

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, AdapterFile.ConfigName)))!.AsObject();
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal("SEQ_CLS", config["task_type"]!.GetValue<string>());
        Assert.Equal(8, config["r"]!.GetValue<int>());
        Assert.Equal(16.0, config["lora_alpha"]!.GetValue<double>());
        Assert.Equal(new[] { "query", "value" }, config["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()).OrderBy(t => t));
        Assert.Equal(new[] { "classifier" }, config["modules_to_save"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("sentence-transformers/all-MiniLM-L6-v2", config["base_model_name_or_path"]!.GetValue<string>());
        Assert.False(config["use_dora"]!.GetValue<bool>());
        Assert.Equal("none", config["bias"]!.GetValue<string>());

        // The same folder stripped of every field PEFT would not write.
        var stripped = Path.Combine(tmp.Path, "stripped");
        Directory.CreateDirectory(stripped);
        File.Copy(Path.Combine(adapter, AdapterFile.WeightsName), Path.Combine(stripped, AdapterFile.WeightsName));
        var peftOnly = new JsonObject();
        foreach (var key in PeftFields) peftOnly[key] = config[key]?.DeepClone();
        Assert.Equal(config.Count, PeftFields.Length + config.Count(kv => !PeftFields.Contains(kv.Key)));
        File.WriteAllText(Path.Combine(stripped, AdapterFile.ConfigName), peftOnly.ToJsonString());

        using var scope = NewDisposeScope();
        var full = AdapterFile.Load(PretrainedModels.LoadBert("minilm", 2, maxLength: 32).Model, adapter);
        var fresh = PretrainedModels.LoadBert("minilm", 2, maxLength: 32);
        var bare = AdapterFile.Load(fresh.Model, stripped);
        Assert.Equal("lora", bare.Recipe);
        full.Model.eval();
        bare.Model.eval();
        using var batch = fresh.Tokenizer.EncodeBatch(Texts);
        using (no_grad())
            Assert.Equal(0, TestUtil.MaxAbsDiff(full.Classifier.forward(batch), bare.Classifier.forward(batch)));

        // From the command line too: the base model comes from the Hugging Face id, the classes from the head.
        var (c1, out1, e1) = CliRunner.Run("predict", "--adapter", adapter, "--max-tokens", "32", "--json", Texts[0]);
        var (c2, out2, e2) = CliRunner.Run("predict", "--adapter", stripped, "--max-tokens", "32", "--json", Texts[0]);
        Assert.True(c1 == 0, e1);
        Assert.True(c2 == 0, e2);
        var p1 = JsonNode.Parse(out1)!; var p2 = JsonNode.Parse(out2)!;
        Assert.Equal("minilm", p2["model"]!.GetValue<string>());
        Assert.Equal(p1["predictions"]![0]!["logits"]!.ToJsonString(), p2["predictions"]![0]!["logits"]!.ToJsonString());
    }
}
