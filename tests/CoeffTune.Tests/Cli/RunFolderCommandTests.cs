using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Training;

namespace CoeffTune.Tests.Cli;

/// <summary>What the command line does with a run folder it must not damage, and inputs it must refuse in one line.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class RunFolderCommandTests(RealModelsFixture models)
{
    private static readonly string[] Small =
        ["train", "--task", "spam", "--train-size", "32", "--val-size", "16", "--test-size", "16", "--epochs", "1", "--max-tokens", "16", "--batch-size", "16"];

    [SkippableFact]
    public void A_failing_run_leaves_an_existing_run_folder_as_it_was()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        var (code, _, err) = CliRunner.Run([.. Small, "--method", "coeff", "--out", run]);
        Assert.True(code == 0, err);
        var split = File.ReadAllBytes(Path.Combine(run, FineTune.SplitFile));
        var adapter = File.ReadAllBytes(Path.Combine(run, FineTune.AdapterFolder, AdapterFile.WeightsName));
        // A typo in the recipe, another seed: refused before anything in the folder changes.
        var typo = CliRunner.Run([.. Small, "--method", "coef", "--seed", "9", "--out", run]);
        Assert.Equal(1, typo.Code);
        Assert.Single(typo.Err.Trim().Split('\n'), l => l.StartsWith("error:"));
        Assert.Equal(split, File.ReadAllBytes(Path.Combine(run, FineTune.SplitFile)));
        Assert.Equal(adapter, File.ReadAllBytes(Path.Combine(run, FineTune.AdapterFolder, AdapterFile.WeightsName)));
        // Resuming with another learning rate is refused, naming it; --allow-changes lets it through.
        var changed = CliRunner.Run([.. Small, "--method", "coeff", "--lr", "0.01", "--out", run, "--resume"]);
        Assert.Equal(1, changed.Code);
        Assert.Contains("resuming would change the run: lr 0.001 -> 0.01", changed.Err);
        var allowed = CliRunner.Run([.. Small, "--method", "coeff", "--lr", "0.01", "--out", run, "--resume", "--allow-changes"]);
        Assert.True(allowed.Code == 0, allowed.Err);
        // A second run on a folder in use is refused.
        using (RunFolder.Acquire(run))
        {
            var busy = CliRunner.Run([.. Small, "--method", "coeff", "--out", run]);
            Assert.Equal(1, busy.Code);
            Assert.Contains("is in use by another coefftune run", busy.Err);
        }
    }

    [SkippableFact]
    public void Too_many_tokens_is_a_one_line_error_in_train_and_predict()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var flags = Small.Where((f, i) => f != "--max-tokens" && (i == 0 || Small[i - 1] != "--max-tokens")).ToArray();
        var train = CliRunner.Run([.. flags, "--method", "coeff", "--max-tokens", "1000", "--out", Path.Combine(tmp.Path, "run")]);
        Assert.Equal(1, train.Code);
        Assert.Contains("allows at most 512 tokens (got 1000)", train.Err);
        var predict = CliRunner.Run("predict", "--adapter", TrainedRun.Dir, "--max-tokens", "1000", "hello");
        Assert.Equal(1, predict.Code);
        Assert.Single(predict.Err.Trim().Split('\n'));
        Assert.Contains("512", predict.Err);
    }

    [Fact]
    public void An_adapter_naming_an_uncached_pretrained_vit_starts_no_pretraining()
    {
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "adapter");
        var peft = CoeffTune.Methods.PeftModel.Wrap(TinyModels.Vit(), "coeff");
        AdapterFile.Save(peft, dir, "vit-fmnist-17x1", ["a", "b", "c"]);
        var (code, _, err) = CliRunner.Run("predict", "--adapter", dir, "nothing.png");
        Assert.Equal(1, code);
        Assert.Contains("base model 'vit-fmnist-17x1' is not in the cache", err);
        Assert.DoesNotContain("pretraining", err);
    }

    [SkippableFact]
    public void Per_method_flags_reach_the_adapter()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var run = Path.Combine(tmp.Path, "run");
        var (code, _, err) = CliRunner.Run([.. Small, "--method", "coeff+lora", "--lora-r", "4", "--lora-alpha", "8", "--lora-targets", "query",
            "--coeff-dropout", "0.2", "--out", run]);
        Assert.True(code == 0, err);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, FineTune.AdapterFolder, AdapterFile.ConfigName)))!;
        var methods = config["methods"]!;
        Assert.Equal(4, methods["lora"]!["r"]!.GetValue<int>());
        Assert.Equal(8.0, methods["lora"]!["lora_alpha"]!.GetValue<double>());
        Assert.Equal(["query"], methods["lora"]!["target_modules"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(0.2, methods["coeff"]!["coeff_dropout"]!.GetValue<double>());
        // 6 layers: alpha 12 x 12, LoRA rank 4 on query (384 -> 384) only, the head 384 x 2 + 2.
        Assert.Equal(6 * 144 + 6 * 4 * (384 + 384) + 770, config["trainable"]!.GetValue<long>());
    }

    [SkippableFact]
    public void A_model_file_given_by_path_embeds_like_the_named_model()
    {
        var asset = models.Require("minilm");
        var byName = CliRunner.Run("embed", "--model", "minilm", "--json", "Hello, World! Ünïcödé costs $5.");
        var byPath = CliRunner.Run("embed", "--model", asset.ModelPath(models.Cache), "--json", "Hello, World! Ünïcödé costs $5.");
        Assert.True(byPath.Code == 0, byPath.Err);
        double[] Vector(string json) => System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("embeddings")[0]
            .GetProperty("vector").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var a = Vector(byName.Out);
        var b = Vector(byPath.Out);
        // A bare folder (model.onnx and vocab.txt) has no sentence-transformers config: mean pooling without the
        // Normalize module, so the same direction at another length; and the tokenizer's defaults are uncased.
        double dot = a.Zip(b, (x, y) => x * y).Sum(), nb = Math.Sqrt(b.Sum(x => x * x));
        Assert.Equal(1.0, dot / nb, 6);
    }
}
