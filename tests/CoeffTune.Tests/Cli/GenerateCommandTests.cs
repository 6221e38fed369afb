using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;
using CoeffTune.Tests.Models.Bart;
using CoeffTune.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Cli;

/// <summary><c>coefftune generate</c> on a tiny BART folder (weights, config.json and a byte-level BPE vocabulary) written here.</summary>
public sealed class GenerateCommandTests : IDisposable
{
    private readonly TempDir dir = new();
    private string ModelDir => Path.Combine(dir.Path, "bart");

    public GenerateCommandTests()
    {
        using var model = TinyBart.Model(21);
        BartCheckpoint.Save(model, ModelDir);
        // 40 tokens, as many as the model's vocabulary: BART's specials, the letters, and the merges "a b", "Ġ b", "Ġb a".
        var tokens = new List<string> { "<s>", "<pad>", "</s>", "<unk>", "a", "b", "Ġ", "ab", "Ġb", "Ġba" };
        tokens.AddRange("cdefghijklmnopqrstuvwxyz".Select(c => c.ToString()));
        tokens.AddRange(new[] { "Ġc", "Ġd", "Ġe", "Ġf", "Ġg", "Ġh" });
        var vocab = new JsonObject();
        for (int i = 0; i < tokens.Count; i++) vocab[tokens[i]] = i;
        File.WriteAllText(Path.Combine(ModelDir, "vocab.json"), vocab.ToJsonString());
        File.WriteAllText(Path.Combine(ModelDir, "merges.txt"), "#version: 0.2\na b\nĠ b\nĠb a\n");
        File.WriteAllText(Path.Combine(ModelDir, "tokenizer_config.json"), "{\"tokenizer_class\": \"BartTokenizer\", \"model_max_length\": 32}");
    }

    public void Dispose() => dir.Dispose();

    private static JsonArray Outputs(string stdout) => JsonNode.Parse(stdout)!["outputs"]!.AsArray();

    private static int[] Ids(JsonNode output) => output["ids"]!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    private static GenerationResult Expected(BartForConditionalGeneration model, long[][] sources, GenerationOptions options)
    {
        var (ids, mask) = TinyBart.Pad(sources);
        return Seq2SeqGenerator.Generate(model, ids, mask, options);
    }

    [Fact]
    public void Input_ids_give_the_library_s_sequences_as_json()
    {
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "generate", "--model", ModelDir, "--json", "--beams", "2",
            "--max-new-tokens", "6", "--input-ids", "0,5,17,9,2", "--input-ids", "0,33,2");
        Assert.True(code == 0, stderr);
        var (model, _) = BartCheckpoint.Load(ModelDir);
        using (model)
        using (var expected = Expected(model, new[] { new long[] { 0, 5, 17, 9, 2 }, new long[] { 0, 33, 2 } }, new GenerationOptions { NumBeams = 2, MaxNewTokens = 6 }))
        {
            var outputs = Outputs(stdout);
            Assert.Equal(2, outputs.Count);
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(expected.Sequences[i], Ids(outputs[i]!));
                Assert.Equal(expected.Scores[i], outputs[i]!["score"]!.GetValue<double>(), 5);
            }
            // The folder has a tokenizer, so the ids are decoded too (special tokens left out).
            using var tokenizer = TextTokenizer.FromFolder(ModelDir);
            Assert.Equal(tokenizer.Decode(expected.Sequences[0]), outputs[0]!["text"]!.GetValue<string>());
        }
    }

    [Fact]
    public void Texts_are_tokenized_with_the_folder_s_tokenizer_and_an_adapter_changes_the_model()
    {
        // An adapter with nonzero LoRA and alpha, saved from the same base weights.
        var adapterDir = Path.Combine(dir.Path, "adapter");
        var (trained, _) = BartCheckpoint.Load(ModelDir);
        using (trained)
        {
            var peft = PeftModel.Wrap(trained, BartForConditionalGeneration.Architecture, Array.Empty<string>(), new CoeffConfig(), new LoraConfig(rank: 2));
            torch.manual_seed(5);
            var byName = trained.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            using (no_grad())
                foreach (var n in peft.TrainableNames) byName[n].add_(randn_like(byName[n]) * 0.5);
            AdapterFile.Save(peft, adapterDir, ModelDir);

            using var tokenizer = TextTokenizer.FromFolder(ModelDir);
            var source = tokenizer.Encode("ab ba").Select(i => (long)i).ToArray();
            Assert.Equal(new long[] { 0, 7, 9, 2 }, source);   // <s> ab Ġba </s>
            using var expected = Expected(trained, new[] { source }, new GenerationOptions { MaxNewTokens = 5 });

            var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(2), "generate", "--model", ModelDir, "--adapter", adapterDir,
                "--max-new-tokens", "5", "--json", "ab ba");
            Assert.True(code == 0, stderr);
            Assert.Contains("coeff+lora", stderr);
            var output = Outputs(stdout)[0]!;
            Assert.Equal(expected.Sequences[0], Ids(output));
            Assert.Equal(tokenizer.Decode(expected.Sequences[0]), output["text"]!.GetValue<string>());
        }
    }

    [Fact]
    public void Bad_values_are_one_line_errors_naming_the_flag()
    {
        var (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "generate", "--model", ModelDir, "--beams", "0", "--input-ids", "0,5,2");
        Assert.Equal(1, code);
        Assert.StartsWith("error: --beams must be at least 1", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "generate", "--model", ModelDir, "--input-ids", "0,x,2");
        Assert.Equal(1, code);
        Assert.Contains("'x' is not an integer id", stderr);
        (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "generate", "--model", ModelDir, "--input-ids", "0,99,2");
        Assert.Contains("99 is not an id of the model's vocabulary of 40", stderr);
    }

    [Fact]
    public void Train_with_a_bart_folder_fits_a_source_target_file_and_writes_an_adapter_generate_reads()
    {
        var task = Path.Combine(dir.Path, "pairs.jsonl");
        var words = new[] { "ab", "ba", "c", "d", "e", "f", "g", "h" };
        var rng = new Random(3);
        var lines = Enumerable.Range(0, 16).Select(_ =>
        {
            var source = string.Join(" ", Enumerable.Range(0, 3).Select(_ => words[rng.Next(words.Length)]));
            return new JsonObject { ["source"] = source, ["target"] = string.Join(" ", source.Split(' ').Reverse()) }.ToJsonString();
        });
        File.WriteAllLines(task, lines);
        var run = Path.Combine(dir.Path, "run");
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(3), "train", "--model", ModelDir, "--task", task, "--method", "coeff+lora",
            "--val-size", "4", "--epochs", "3", "--batch-size", "4", "--lr", "0.01", "--out", run);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("validation BLEU", stdout);
        Assert.Contains("9 training pairs, 4 validation pairs, 3 test pairs", stderr + stdout);
        Assert.Contains("test (3 held-out pairs): BLEU", stdout);
        var result = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "result.json")))!;
        Assert.Equal("coeff+lora", result["recipe"]!.GetValue<string>());
        Assert.InRange(result["validation"]!["bleu"]!.GetValue<double>(), 0, 100);
        Assert.InRange(result["validation"]!["token_accuracy"]!.GetValue<double>(), 0, 1);
        Assert.Equal(3, result["test_pairs"]!.GetValue<int>());
        Assert.InRange(result["test"]!["bleu"]!.GetValue<double>(), 0, 100);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "adapter", AdapterFile.ConfigName)))!;
        Assert.Equal("SEQ_2_SEQ_LM", config["task_type"]!.GetValue<string>());

        // eval reads the adapter back from disk and scores the same held-out pairs: the training run's test numbers, exactly.
        (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "eval", "--adapter", run, "--json");
        Assert.True(code == 0, stderr);
        var evaluated = JsonNode.Parse(stdout)!;
        Assert.Equal(3, evaluated["examples"]!.GetValue<int>());
        foreach (var metric in new[] { "bleu", "exact_match", "token_accuracy" })
            Assert.Equal(result["test"]![metric]!.GetValue<double>(), evaluated["adapted"]![metric]!.GetValue<double>(), 9);
        Assert.Equal(result["test_loss"]!.GetValue<double>(), evaluated["adapted"]!["loss"]!.GetValue<double>(), 5);
        Assert.NotNull(evaluated["adapters_disabled"]!["bleu"]);

        (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "generate", "--model", ModelDir, "--adapter", Path.Combine(run, "adapter"), "--json", "ab c d");
        Assert.True(code == 0, stderr);
        Assert.Single(Outputs(stdout));
    }

    [Fact]
    public void The_generate_bench_prints_tokens_per_second_with_and_without_the_cache()
    {
        // A tiny shape through the same code path the BART-base bench takes (the default shape is too slow for a test).
        var rows = CoeffTune.Benchmarks.GenerationBench.Run(new CoeffTune.Benchmarks.GenerationBenchOptions
        {
            Model = TinyBart.Shape with { Dropout = 0 }, SourceTokens = 8, NewTokens = 6, Repeats = 1,
        });
        Assert.Equal(new[] { ("base", true), ("base", false), ("coeff", true), ("coeff", false) }, rows.Select(r => (r.Setting, r.Cache)));
        Assert.All(rows, r => Assert.True(r.TokensPerSecond > 0));
    }
}
