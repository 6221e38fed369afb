using System.Text.Json;
using CoeffTune.Tests.Data;

namespace CoeffTune.Tests.Cli;

/// <summary><c>bench vl-mini --quick</c> end to end through the command line: a tiny BART pretrained here, the frozen ViT, the four tasks.</summary>
[Collection(RealDataCollection.Name)]
public sealed class VlBenchCommandTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly TempDir temp = new();
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(8);

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Vl_mini_quick_reports_every_method_on_the_four_tasks_with_alpha_counted_per_attention_layer()
    {
        var (code, stdout, stderr) = CliProcess.Run(Timeout, "bench", "vl-mini", "--quick", "--out", temp.Path);
        output.WriteLine(stdout);
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        Assert.True(File.Exists(Path.Combine(temp.Path, "vl-mini.md")));
        // The chart: a PNG (its signature) of the bars.
        var png = File.ReadAllBytes(Path.Combine(temp.Path, "vl-mini.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp.Path, "vl-mini.json"))).RootElement;
        var methods = j.GetProperty("methods");
        string[] labels = ["lora", "coeff+lora", "dora", "coeff+dora", "coeff+lora p=0", "coeff+lora p=0.1", "coeff+lora p=0.4"];
        Assert.Equal(labels, methods.EnumerateObject().Select(m => m.Name));
        foreach (var m in methods.EnumerateObject())
        {
            var tasks = m.Value.GetProperty("tasks");
            Assert.Equal(["vqa", "gqa", "nlvr2", "caption"], tasks.EnumerateObject().Select(t => t.Name));
            foreach (var t in tasks.EnumerateObject()) Assert.InRange(t.Value.GetDouble(), 0, 100);
            // One seed: the mean is the plain mean of the four task scores.
            Assert.Equal(tasks.EnumerateObject().Average(t => t.Value.GetDouble()), m.Value.GetProperty("mean").GetDouble(), 9);
        }
        // The quick BART: 2 + 2 layers of 4 heads, so 6 attention layers (encoder self, decoder self, decoder cross) of 16 alphas.
        long Trainable(string label) => methods.GetProperty(label).GetProperty("trainable").GetInt64();
        Assert.Equal(6 * 16, Trainable("coeff+lora") - Trainable("lora"));
        Assert.Equal(6 * 16, Trainable("coeff+dora") - Trainable("dora"));
        // LoRA rank 16 on every linear layer: per encoder layer q, k, v, o (64 -> 64) and fc1, fc2 (64 <-> 128); per decoder
        // layer those and the cross-attention's q, k, v, o. Beside it the 12 LayerNorms (weight and bias of 64) and the
        // projection from the ViT's 64 to BART's 64.
        int encoderLayer = 4 * 16 * (64 + 64) + 2 * 16 * (64 + 128), decoderLayer = encoderLayer + 4 * 16 * (64 + 64);
        Assert.Equal(2 * encoderLayer + 2 * decoderLayer + 12 * 2 * 64 + (64 * 64 + 64), Trainable("lora"));
        Assert.Equal([0, 0.1, 0.2, 0.4], j.GetProperty("dropout_sweep").EnumerateArray().Select(x => x.GetProperty("p").GetDouble()));
        Assert.Equal(labels.Length, j.GetProperty("runs").GetArrayLength());
        Assert.InRange(j.GetProperty("pretraining").GetProperty("heldout_token_accuracy").GetDouble(), 0, 1);
        Assert.True(File.Exists(Path.Combine(temp.Path, "runs", "coeff+lora", "seed0", "samples.json")));
    }
}
