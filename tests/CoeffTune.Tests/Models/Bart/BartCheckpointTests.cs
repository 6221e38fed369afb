using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Checkpoints;
using CoeffTune.Generation;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models.Bart;

/// <summary>
/// The BART loader and model against Fixtures/Models/hf-bart, written by tools/reference/make_bart_fixtures.py: a tiny
/// BART in transformers' BartForConditionalGeneration layout (the tied embedding stored four times, as a plain
/// state_dict holds it; scale_embedding true; 4 encoder heads and 3 decoder heads) with outputs computed in float64
/// by BART's forward pass written in plain PyTorch. The real loader reads the files.
/// </summary>
public sealed class BartCheckpointTests(ITestOutputHelper output)
{
    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "Fixtures", "Models", "hf-bart");

    /// <summary>
    /// Float32 against float64 on outputs of magnitude up to about 4.3 (weights of std 0.3): measured at most 2.1e-6
    /// (encoder states), 1.6e-6 (logits); 5e-5 leaves room for another kernel order.
    /// </summary>
    private const double Tolerance = 5e-5;

    [Fact]
    public void Hugging_face_layout_loads_and_matches_the_reference_forward()
    {
        var (model, report) = BartCheckpoint.Load(Fixture);
        using (model)
        {
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            // The three tied copies are checked equal to model.shared.weight and set aside.
            Assert.Equal(new[] { "lm_head.weight", "model.decoder.embed_tokens.weight", "model.encoder.embed_tokens.weight" }, report.Ignored.Order(StringComparer.Ordinal));
            var c = model.Config;
            Assert.Equal((24, 2, 2, 4, 3, 48, 40, 16, 40), (c.DModel, c.EncoderLayers, c.DecoderLayers, c.EncoderAttentionHeads, c.DecoderAttentionHeads,
                c.EncoderFfnDim, c.DecoderFfnDim, c.MaxPositionEmbeddings, c.VocabSize));
            Assert.True(c.ScaleEmbedding);

            var expected = Expected();
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var ids = Input(expected, "input_ids");
            var mask = Input(expected, "attention_mask");
            var decoderIds = Input(expected, "decoder_input_ids");
            Compare(expected, "encoder_last_hidden_state", model.Encode(ids, mask));
            Compare(expected, "logits", model.forward(ids, mask, decoderIds));
        }
    }

    [Fact]
    public void Greedy_decoding_matches_the_reference_with_and_without_the_cache()
    {
        var (model, _) = BartCheckpoint.Load(Fixture);
        using (model)
        {
            var expected = Expected();
            using var scope = NewDisposeScope();
            var ids = Input(expected, "input_ids");
            var mask = Input(expected, "attention_mask");
            var (shape, greedy) = Output(expected, "greedy_ids");
            foreach (var cache in new[] { true, false })
            {
                using var result = Seq2SeqGenerator.Generate(model, ids, mask, new GenerationOptions { MaxNewTokens = 6, UseCache = cache, ReturnLogits = true });
                // The reference's rows: the start token, then the generated ids padded after EOS; ours stop at EOS.
                for (int b = 0; b < shape[0]; b++)
                {
                    var row = greedy.Skip((int)(b * shape[1]) + 1).Take((int)shape[1] - 1).Select(v => (int)v).ToList();
                    int eos = row.IndexOf(2);
                    Assert.Equal(eos >= 0 ? row.Take(eos + 1) : row, result.Sequences[b]);
                }
                Compare(expected, "greedy_step_logits", result.StepLogits!);
            }
        }
    }

    [Fact]
    public void Save_writes_a_folder_the_loader_reads_back_exactly()
    {
        using var dir = new TempDir();
        using var model = TinyBart.Model(3);
        using (no_grad()) model.final_logits_bias.normal_();
        BartCheckpoint.Save(model, dir.Path);
        var keys = Safetensors.LoadStateDict(Path.Combine(dir.Path, "model.safetensors"));
        Assert.Contains("model.shared.weight", keys.Keys);
        Assert.Contains("model.decoder.layers.1.encoder_attn.q_proj.weight", keys.Keys);
        Assert.Contains("final_logits_bias", keys.Keys);
        foreach (var t in keys.Values) t.Dispose();
        var (loaded, report) = BartCheckpoint.Load(dir.Path);
        using (loaded)
        {
            Assert.Empty(report.Ignored);
            Assert.Equal(model.Config, loaded.Config);
            using var scope = NewDisposeScope();
            var (ids, mask) = TinyBart.Sources();
            var decoder = tensor(new long[,] { { 2, 0, 5 }, { 2, 0, 7 }, { 2, 0, 9 } });
            using var __ = no_grad();
            Assert.Equal(0.0, TestUtil.MaxAbsDiff(model.forward(ids, mask, decoder), loaded.forward(ids, mask, decoder)));
        }
    }

    [Fact]
    public void A_missing_tensor_is_an_error_naming_it_as_the_file_does()
    {
        var message = LoadAltered(d => d.Remove("model.decoder.layers.1.encoder_attn.k_proj.bias"));
        Assert.Contains("lacks 'model.decoder.layers.1.encoder_attn.k_proj.bias'", message);
    }

    [Fact]
    public void Tied_copies_that_differ_are_an_error_naming_both()
    {
        var message = LoadAltered(d => d["lm_head.weight"] = d["lm_head.weight"] + 1);
        Assert.Contains("'lm_head.weight' differs from 'model.shared.weight'", message);
    }

    [Fact]
    public void Only_one_copy_of_the_embedding_is_enough_and_a_missing_bias_is_zero()
    {
        // save_pretrained keeps one of the tied copies; which one varies.
        using var dir = Altered(d =>
        {
            foreach (var k in new[] { "model.shared.weight", "model.encoder.embed_tokens.weight", "lm_head.weight", "final_logits_bias" }) d.Remove(k);
        });
        var (model, report) = BartCheckpoint.Load(dir.Path);
        using (model)
        {
            Assert.Contains("final_logits_bias (absent: zero)", report.Ignored);
            Assert.Equal(0.0, model.final_logits_bias.abs().max().ToDouble());
        }
    }

    [Fact]
    public void Shapes_and_layer_counts_that_disagree_with_config_json_are_errors_naming_the_tensor()
    {
        var positions = LoadAltered(d => d["model.encoder.embed_positions.weight"] = d["model.encoder.embed_positions.weight"].narrow(0, 0, 16));
        Assert.Contains("'model.encoder.embed_positions.weight' has shape [16, 24], config.json implies [18, 24]", positions);
        Assert.Contains("offset 2", positions);
        var extra = LoadAltered(d => d["model.encoder.layers.2.fc1.bias"] = zeros(48));
        Assert.Contains("'model.encoder.layers.2.fc1.bias'", extra);
        var stray = LoadAltered(d => d["model.encoder.adapter.weight"] = zeros(2));
        Assert.Contains("'model.encoder.adapter.weight' that is not part of BART", stray);
    }

    [Fact]
    public void A_config_without_a_size_is_an_error_naming_the_key()
    {
        using var dir = new TempDir();
        foreach (var f in Directory.GetFiles(Fixture)) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!.AsObject();
        config.Remove("decoder_attention_heads");
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), config.ToJsonString());
        var e = Assert.Throws<InvalidDataException>(() => BartCheckpoint.Load(dir.Path));
        Assert.Contains("missing 'decoder_attention_heads'", e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    private static string LoadAltered(Action<Dictionary<string, Tensor>> change)
    {
        using var dir = Altered(change);
        var e = Assert.Throws<InvalidDataException>(() => BartCheckpoint.Load(dir.Path));
        Assert.DoesNotContain("\n", e.Message);
        return e.Message;
    }

    private static TempDir Altered(Action<Dictionary<string, Tensor>> change)
    {
        var dir = new TempDir();
        File.Copy(Path.Combine(Fixture, "config.json"), Path.Combine(dir.Path, "config.json"));
        var d = Safetensors.LoadStateDict(Path.Combine(Fixture, "model.safetensors"));
        change(d);
        Safetensors.SaveStateDict(Path.Combine(dir.Path, "model.safetensors"), d);
        foreach (var t in d.Values) t.Dispose();
        return dir;
    }

    private static JsonElement Expected()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "expected.json")));
        return doc.RootElement.Clone();
    }

    private static Tensor Input(JsonElement e, string name)
    {
        var entry = e.GetProperty("inputs").GetProperty(name);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(s => s.GetInt64()).ToArray();
        return tensor(entry.GetProperty("data").EnumerateArray().Select(v => v.GetInt64()).ToArray(), shape);
    }

    private static (long[] Shape, double[] Values) Output(JsonElement e, string name)
    {
        var entry = e.GetProperty("outputs").GetProperty(name);
        return (entry.GetProperty("shape").EnumerateArray().Select(s => s.GetInt64()).ToArray(),
            entry.GetProperty("data").EnumerateArray().Select(v => v.GetDouble()).ToArray());
    }

    private void Compare(JsonElement expected, string name, Tensor actual)
    {
        var (shape, values) = Output(expected, name);
        Assert.Equal(shape, actual.shape);
        var got = TestUtil.Values(actual);
        double max = got.Zip(values, (a, b) => Math.Abs(a - b)).Max();
        double scale = values.Max(Math.Abs);
        output.WriteLine($"{name}: max |diff| {max:0.###e+0} over {got.Length} values (largest |value| {scale:0.###})");
        Assert.True(max <= Tolerance, $"{name}: max |diff| {max:0.###e+0} > {Tolerance:0.#e+0}");
    }
}
