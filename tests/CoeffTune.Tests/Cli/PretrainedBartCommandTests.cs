using System.Text.Json;
using CoeffTune.Tests.Data;

namespace CoeffTune.Tests.Cli;

/// <summary><c>generate --model NAME</c> with a BART pretrained here (the quick one, pretrained on first use in about a minute).</summary>
[Collection(RealDataCollection.Name)]
public sealed class PretrainedBartCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(6);

    [Fact]
    public void Generate_runs_the_bart_pretrained_here_by_name_with_its_own_tokenizer()
    {
        var (code, stdout, stderr) = CliProcess.Run(Timeout, "generate", "--model", "bart-brown-quick", "--max-new-tokens", "8", "--json", "The jury said it did find that");
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        var outputs = JsonDocument.Parse(stdout).RootElement.GetProperty("outputs");
        Assert.Equal(1, outputs.GetArrayLength());
        var ids = outputs[0].GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToList();
        Assert.InRange(ids.Count, 1, 8);
        Assert.All(ids, id => Assert.InRange(id, 0, 1023));      // the quick vocabulary: 1,024 tokens
        Assert.Equal(JsonValueKind.String, outputs[0].GetProperty("text").ValueKind);
    }

    [Fact]
    public void An_unknown_model_name_is_a_one_line_error_naming_the_bart_pretrained_here()
    {
        var (code, _, stderr) = CliProcess.Run(Timeout, "generate", "--model", "bart-nowhere", "hello");
        Assert.NotEqual(0, code);
        Assert.Contains("--model bart-nowhere", stderr);
        Assert.Contains("bart-brown", stderr);
    }
}
